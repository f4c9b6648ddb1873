def _sandbox():
    # Pre-started worker: warm up, say 'R' on stdout, then read "<size>\n<program><stdin...>"
    # from stdin, run the program as __main__ and end with os._exit (no interpreter shutdown).
    import builtins, os, sys
    sys.path.append('/packages')
    builtins.exit = builtins.quit = sys.exit
    # Not dumpable (execve made us dumpable again): no other process of our host uid may
    # open our pipes through /proc/<pid>/fd or read our memory. Failing that, do not start.
    import ctypes
    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_DUMPABLE, 0)')
    compile('def f(x):\n    return [i * x for i in range(3)]\nprint(f"{f(2)}")\n', '<warm-up>', 'exec')
    os.write(1, b'R')
    head = b''
    while not head.endswith(b'\n'):
        byte = os.read(0, 1)
        if not byte:
            os._exit(0)
        head += byte
    size = int(head)
    parts = []
    while size > 0:
        chunk = os.read(0, size)
        if not chunk:
            os._exit(0)
        parts.append(chunk)
        size -= len(chunk)
    source = b''.join(parts)
    scope = sys.modules['__main__'].__dict__
    del scope['_sandbox']
    sys.argv[:] = ['main.py']
    sys.stdout.reconfigure(line_buffering=True)
    status = 0
    try:
        exec(compile(source, 'main.py', 'exec'), scope)
    except SystemExit as stop:
        code = stop.code
        if code is None:
            status = 0
        elif isinstance(code, int):
            status = code & 0xFF
        else:
            print(code, file=sys.stderr)
            status = 1
    except BaseException as error:
        import linecache, traceback
        lines = source.decode('utf-8', 'replace').splitlines(True)
        linecache.cache['main.py'] = (len(source), None, lines, 'main.py')
        tb = error.__traceback__.tb_next if error.__traceback__ else None
        traceback.print_exception(type(error), error, tb)
        status = 1
    try:
        threading = sys.modules.get('threading')
        if threading is not None:
            threading._shutdown()
        import atexit
        atexit._run_exitfuncs()
    except BaseException as error:
        print(f'{type(error).__name__}: {error}', file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status)


_sandbox()
