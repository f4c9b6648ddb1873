def _sandbox():
    # Pre-started worker: warm up, say 'R' on stdout, then read a header line from stdin.
    #
    # One-shot: "<code size> <files size> <max output files> <max output bytes>\n", then the
    # program, the input files (JSON, base64 contents), then the program's stdin. The program
    # runs as __main__ and the process ends with os._exit (no interpreter shutdown); the files
    # it wrote to /work/outputs/ and the figures it left open go to the results pipe (fd 5).
    #
    # Session: "S\n", then requests "<size>\n<JSON>" on stdin, each answered "<size>\n<JSON>"
    # on fd 5, until stdin closes. Programs run in one persistent __main__ namespace with their
    # output captured in unnamed files (so the processes they start write there too).
    import builtins, os, sys
    sys.path.append('/packages')
    builtins.exit = builtins.quit = sys.exit
    # Not dumpable (execve made us dumpable again): no other process of our host uid may
    # open our pipes through /proc/<pid>/fd or read our memory. Failing that, do not start.
    import ctypes
    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_DUMPABLE, 0)')
    compile('def f(x):\n    return [i * x for i in range(3)]\nprint(f"{f(2)}")\n', '<warm-up>', 'exec')
    RESULTS = 5
    os.set_inheritable(RESULTS, False)  # ours: not for the processes a program starts
    os.write(1, b'R')

    def read_exact(size):
        parts = []
        while size > 0:
            chunk = os.read(0, min(size, 1 << 20))
            if not chunk:
                os._exit(0)
            parts.append(chunk)
            size -= len(chunk)
        return b''.join(parts)

    def read_line():
        head = b''
        while not head.endswith(b'\n'):
            byte = os.read(0, 1)
            if not byte:
                os._exit(0)
            head += byte
        return head

    def write_all(fd, data):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def write_files(files):
        import base64
        for item in files:
            path = '/work/' + item['name']
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            try:
                write_all(fd, base64.b64decode(item['data']))
            finally:
                os.close(fd)

    def snapshot():
        # The files under /work/outputs/ (at most 256, 4 levels down): name -> (path, size,
        # mtime). A run's outputs are what is new or changed against the snapshot taken
        # before it. Not "mtime after the run began": file times come from the kernel's
        # coarse clock, a tick behind time.time_ns(), so a picture written in the run's first
        # milliseconds had an older mtime and was missed (seen in CI).
        found = {}
        def walk(directory, prefix, depth):
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                return
            for entry in entries:
                if len(found) >= 256:
                    return
                try:
                    if entry.is_dir(follow_symlinks=False) and depth < 4:
                        walk(entry.path, prefix + entry.name + '/', depth + 1)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found[prefix + entry.name] = (entry.path, st.st_size, st.st_mtime_ns)
                except OSError:
                    pass
        walk('/work/outputs', 'outputs/', 0)
        return found

    def outputs(before, max_files, max_bytes):
        # Files written to /work/outputs/ by the run (new or changed against `before`, a
        # snapshot()), pictures first; then open matplotlib figures when the program saved no
        # picture itself. Bounded: at most max_files with content, max_bytes of content in all.
        found = [(name, path, size) for name, (path, size, mtime) in snapshot().items()
                 if before.get(name, (None, None, None))[1:] != (size, mtime)]
        pictures = ('.png', '.jpg', '.jpeg', '.gif', '.webp', '.svg')
        found.sort(key=lambda f: not f[0].lower().endswith(pictures))
        figures = []
        plt = sys.modules.get('matplotlib.pyplot')
        if plt is not None:
            try:
                if not any(f[0].lower().endswith(pictures) for f in found):
                    import io
                    for number in plt.get_fignums():
                        buffer = io.BytesIO()
                        plt.figure(number).savefig(buffer, format='png')
                        figures.append((f'figure-{number}.png', buffer.getvalue()))
                plt.close('all')
            except BaseException as error:
                print(f'(figures not captured: {type(error).__name__}: {error})', file=sys.stderr)
        if not found and not figures:
            return []
        import base64
        result, budget = [], max_bytes
        def add(name, size, read):
            entry = {'name': name, 'size': size}
            if len(result) >= max_files:
                entry['omitted'] = f'more than {max_files} files'
            elif size > budget:
                entry['omitted'] = f'over the {max_bytes} bytes returned per run'
            else:
                data = read()
                if data is None:
                    entry['omitted'] = 'unreadable'
                else:
                    entry['data'] = base64.b64encode(data).decode()
            result.append(entry)
            return len(entry.get('data', '')) * 3 // 4
        def reader(path, size):
            def read():
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        return os.read(fd, size + 1)[:size]
                    finally:
                        os.close(fd)
                except OSError:
                    return None
            return read
        for name, data in figures:
            budget -= add(name, len(data), lambda data=data: data)
        for name, path, size in found:
            budget -= add(name, size, reader(path, size))
        return result

    def exit_status(stop):
        code = stop.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code & 0xFF
        print(code, file=sys.stderr)
        return 1

    def report(error, source):
        import linecache, traceback
        lines = source.decode('utf-8', 'replace').splitlines(True)
        linecache.cache['main.py'] = (len(source), None, lines, 'main.py')
        tb = error.__traceback__.tb_next if error.__traceback__ else None
        traceback.print_exception(type(error), error, tb)

    head = read_line()
    scope = sys.modules['__main__'].__dict__
    del scope['_sandbox']
    session = scope.pop('session')
    sys.argv[:] = ['main.py']
    if head == b'S\n':
        session(read_exact, read_line, write_all, write_files, snapshot, outputs, exit_status, report, scope, RESULTS)
    sizes = [int(n) for n in head.split()]
    source = read_exact(sizes[0])
    if len(sizes) >= 4 and sizes[1] > 0:
        import json
        write_files(json.loads(read_exact(sizes[1])))
    before = snapshot()
    sys.stdout.reconfigure(line_buffering=True)
    status = 0
    try:
        exec(compile(source, 'main.py', 'exec'), scope)
    except SystemExit as stop:
        status = exit_status(stop)
    except BaseException as error:
        report(error, source)
        status = 1
    try:
        threading = sys.modules.get('threading')
        if threading is not None:
            threading._shutdown()
        import atexit
        atexit._run_exitfuncs()
    except BaseException as error:
        print(f'{type(error).__name__}: {error}', file=sys.stderr)
    if len(sizes) >= 4:
        try:
            produced = outputs(before, sizes[2], sizes[3])
            if produced:
                import json
                write_all(RESULTS, json.dumps(produced).encode())
        except BaseException as error:
            print(f'(output files not returned: {type(error).__name__}: {error})', file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status)


def session(read_exact, read_line, write_all, write_files, snapshot, outputs, exit_status, report, scope, results):
    # A session's loop. Requests: exec (run a program), put (write a file), list, get. Between
    # programs SIGINT is ignored; during one it raises KeyboardInterrupt, which is how the
    # service stops a program that overruns its time without ending the session.
    import base64, json, os, signal, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    for fd in saved:
        os.set_inheritable(fd, False)

    def answer(value):
        data = json.dumps(value).encode()
        write_all(results, b'%d\n' % len(data) + data)

    def capture():
        fd = os.open('/tmp', os.O_TMPFILE | os.O_RDWR, 0o600)
        os.set_inheritable(fd, False)
        return fd

    def collected(fd, limit):
        size = os.fstat(fd).st_size
        os.lseek(fd, 0, os.SEEK_SET)
        parts, left = [], min(size, limit)
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        os.close(fd)
        return b''.join(parts).decode('utf-8', 'replace'), size > limit

    def stop_children():
        # We are PID 1 of our namespace: kill(-1) reaches every process a program started,
        # and they are reaped here (as init must).
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            return
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.001)

    def run(request):
        out, err = capture(), capture()
        stdin = capture()
        if request.get('stdin'):
            os.write(stdin, request['stdin'].encode())
            os.lseek(stdin, 0, os.SEEK_SET)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(stdin, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(stdin)
        if request.get('files'):
            write_files(request['files'])
        source = request['code'].encode()
        before = snapshot()
        status, interrupted = 0, False
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            exec(compile(source, 'main.py', 'exec'), scope)
        except SystemExit as stop:
            status = exit_status(stop)
        except KeyboardInterrupt as error:
            interrupted = True
            report(error, source)
            status = 1
        except BaseException as error:
            report(error, source)
            status = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            produced = outputs(before, request['max_files'], request['max_bytes'])
        except BaseException as error:
            produced = []
            print(f'(output files not returned: {type(error).__name__}: {error})', file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        stop_children()
        for fd, original in zip((0, 1, 2), saved):
            os.dup2(original, fd)  # stdin is the service's requests again
        limit = request['max_output']
        stdout, stdout_cut = collected(out, limit)
        stderr, stderr_cut = collected(err, limit)
        return {'status': status, 'interrupted': interrupted, 'stdout': stdout,
                'stderr': stderr, 'truncated': stdout_cut or stderr_cut, 'outputs': produced}

    def path_of(name):
        return '/work/' + name

    def listing(limit):
        files, truncated = [], False
        for directory, dirs, names in os.walk('/work'):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if len(files) >= limit:
                    truncated = True
                    return files, truncated
                files.append([path[len('/work/'):], st.st_size])
        return files, truncated

    def get(name, limit):
        try:
            fd = os.open(path_of(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return {'error': 'not_found', 'message': f'no file {name} in /work'}
        except OSError as error:
            return {'error': 'unreadable', 'message': f'{name}: {error.strerror}'}
        try:
            st = os.fstat(fd)
            import stat
            if not stat.S_ISREG(st.st_mode):
                return {'error': 'unreadable', 'message': f'{name} is not a regular file'}
            if st.st_size > limit:
                return {'error': 'too_large', 'message': f'{name} is {st.st_size} bytes; at most {limit} can be downloaded'}
            data = os.read(fd, limit + 1)[:limit]
            return {'size': len(data), 'data': base64.b64encode(data).decode()}
        finally:
            os.close(fd)

    while True:
        size = int(read_line())
        request = json.loads(read_exact(size))
        op = request.get('op')
        try:
            if op == 'exec':
                answer(run(request))
            elif op == 'put':
                write_files([request])
                answer({'size': os.lstat(path_of(request['name'])).st_size})
            elif op == 'list':
                files, truncated = listing(request['max'])
                answer({'files': files, 'truncated': truncated})
            elif op == 'get':
                answer(get(request['name'], request['max']))
            else:
                answer({'error': 'bad_request', 'message': f'unknown op {op!r}'})
        except OSError as error:
            answer({'error': 'failed', 'message': f'{type(error).__name__}: {error}'})


_sandbox()
