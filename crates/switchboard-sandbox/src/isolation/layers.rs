//! Which isolation layers the host could not provide, and whether the operator accepted that.
//!
//! The configuration promises every layer: a memory (with swap), process-count and CPU limit
//! for the whole process tree of one execution (cgroups), Landlock, seccomp and the six
//! namespaces. Seccomp and the namespaces are never optional — without them a sandbox does not
//! start at all ([`super::SpawnError`]). The others are found out at start-up ([`Probe`]); a
//! missing one makes the service refuse to start ([`decide`]), naming the layer and how to
//! grant it, unless the operator named it in `allow_weaker_isolation`. Then it runs with the
//! weaker substitute (rlimits per process, the read-only mounts alone) and says so on `/ready`
//! and in the `sandbox_isolation_degraded` gauge.

use std::fmt;

use serde_json::json;

use super::IsolationError;

/// A layer the operator may accept running without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// A memory cgroup: one limit for all processes of an execution, enforced by the OOM killer.
    Memory,
    /// Swap accounted in that memory limit (`memsw` on v1, `memory.swap.max` on v2).
    Swap,
    /// A pids cgroup: one limit on processes and threads of an execution.
    Pids,
    /// A CPU quota (cgroup `cpu`) for an execution.
    Cpu,
    /// Landlock file-system, network and scope rules.
    Landlock,
}

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::Memory,
        Layer::Swap,
        Layer::Pids,
        Layer::Cpu,
        Layer::Landlock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Swap => "swap",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
            Self::Landlock => "landlock",
        }
    }

    /// The layers one name of the setting stands for (`cgroups`: every cgroup layer);
    /// `setting` names the setting in the error.
    pub fn parse(name: &str, setting: &str) -> Result<Vec<Self>, String> {
        let wanted = name.trim().to_ascii_lowercase();
        if let Some(layer) = Self::ALL.into_iter().find(|l| l.name() == wanted) {
            return Ok(vec![layer]);
        }
        if wanted == "cgroups" {
            return Ok(vec![Self::Memory, Self::Swap, Self::Pids, Self::Cpu]);
        }
        let names = format!(
            "{} (or cgroups for the first four)",
            Self::ALL.map(Layer::name).join(", ")
        );
        if ["seccomp", "namespaces", "namespace", "userns"].contains(&wanted.as_str()) {
            return Err(format!(
                "{setting}: '{name}' cannot be weakened: the sandbox never runs code without seccomp and its namespaces; the layers that can be named are {names}"
            ));
        }
        Err(format!(
            "{setting}: unknown isolation layer '{name}'; expected some of {names}"
        ))
    }

    /// The setting's list of names, each layer once; blank entries are ignored.
    pub fn parse_all(names: Vec<String>, setting: &str) -> Result<Vec<Self>, String> {
        let mut layers = Vec::new();
        for name in names.iter().filter(|n| !n.trim().is_empty()) {
            for layer in Self::parse(name, setting)? {
                if !layers.contains(&layer) {
                    layers.push(layer);
                }
            }
        }
        Ok(layers)
    }

    /// What runs instead when the layer is missing and accepted.
    fn substitute(self) -> &'static str {
        match self {
            Self::Memory => {
                "RLIMIT_AS per process: a program with several processes may use that much in each"
            }
            Self::Swap => "the memory limit counts RAM only: a program may use swap beyond it",
            Self::Pids => "RLIMIT_NPROC only",
            Self::Cpu => {
                "no CPU quota: an execution may use every core until its CPU-time rlimit ends it"
            }
            Self::Landlock => "the read-only mounts and seccomp alone",
        }
    }

    /// How an operator grants the layer.
    fn grant(self) -> &'static str {
        match self {
            Self::Memory | Self::Pids | Self::Cpu => {
                "the service needs a cgroup in which it may create child groups with this controller: run it as root on the host (cgroup v1 or v2), or give its uid a delegated cgroup v2 subtree with the controller enabled in cgroup.subtree_control (systemd: Delegate=yes on its unit). In a container, give it its cgroup: a cgroup v2 host, runc with the systemd driver and a writable cgroup mount (Docker >= 28: --security-opt writable-cgroups=true; containerd >= 2.1: cgroup_writable = true; CRI-O: the cgroup2-mount-hierarchy-rw annotation; see deploy/README.md, \"The container's cgroup\")"
            }
            Self::Swap => {
                "boot the kernel with swap accounting (cgroup v1: swapaccount=1 with CONFIG_MEMCG_SWAP; v2: CONFIG_MEMCG_SWAP, without cgroup.memory=noswap), or run the host without swap"
            }
            Self::Landlock => {
                "a kernel with CONFIG_SECURITY_LANDLOCK (Linux 5.13+) with landlock in the lsm= boot parameter; in a container, a seccomp profile that allows landlock_create_ruleset, landlock_add_rule and landlock_restrict_self (deploy/seccomp/sandbox.json does)"
            }
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What start-up found: each layer the host could not provide, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Probe {
    pub missing: Vec<(Layer, String)>,
}

impl Probe {
    pub(crate) fn missing(&mut self, layer: Layer, why: impl Into<String>) {
        if !self.missing.iter().any(|(l, _)| *l == layer) {
            self.missing.push((layer, why.into()));
        }
    }
}

/// A layer missing and accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Degraded {
    pub layer: Layer,
    pub why: String,
}

/// Refuse when a missing layer was not accepted; else the degraded layers.
pub(crate) fn decide(probe: &Probe, allowed: &[Layer]) -> Result<Vec<Degraded>, IsolationError> {
    let refused: Vec<&(Layer, String)> = probe
        .missing
        .iter()
        .filter(|(layer, _)| !allowed.contains(layer))
        .collect();
    if !refused.is_empty() {
        // Layers granted the same way (the three cgroup controllers) share one explanation.
        let mut groups: Vec<(&str, Vec<&(Layer, String)>)> = Vec::new();
        for missing in &refused {
            let grant = missing.0.grant();
            match groups.iter_mut().find(|(g, _)| *g == grant) {
                Some((_, members)) => members.push(missing),
                None => groups.push((grant, vec![missing])),
            }
        }
        let each = groups
            .iter()
            .map(|(grant, members)| {
                let names = members
                    .iter()
                    .map(|(l, _)| format!("'{l}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let whys = members
                    .iter()
                    .map(|(_, why)| why.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let (noun, verb, pronoun) = if members.len() == 1 {
                    ("layer", "is", "it")
                } else {
                    ("layers", "are", "them")
                };
                format!(
                    "isolation {noun} {names} {verb} not enforceable on this host ({whys}). To grant {pronoun}: {grant}"
                )
            })
            .collect::<Vec<_>>()
            .join(". ");
        let names: Vec<&str> = refused.iter().map(|(l, _)| l.name()).collect();
        let toml = names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let names = names.join(",");
        return Err(IsolationError::Unsupported(format!(
            "{each}. To run with weaker isolation instead, name what to run without explicitly: --allow-weaker-isolation {names} (SANDBOX_ALLOW_WEAKER_ISOLATION={names}; allow_weaker_isolation = [{toml}] in [sandbox])"
        )));
    }
    Ok(probe
        .missing
        .iter()
        .map(|(layer, why)| Degraded {
            layer: *layer,
            why: why.clone(),
        })
        .collect())
}

/// Each layer's state for `/ready`: "enforced", or "degraded" with why and what runs instead.
pub(crate) fn describe(degraded: &[Degraded]) -> serde_json::Value {
    let mut layers = serde_json::Map::new();
    for layer in Layer::ALL {
        let state = match degraded.iter().find(|d| d.layer == layer) {
            Some(d) => json!({
                "state": "degraded",
                "why": d.why,
                "instead": layer.substitute(),
            }),
            None => json!({ "state": "enforced" }),
        };
        layers.insert(layer.name().into(), state);
    }
    layers.insert(
        "seccomp".into(),
        json!({
            "state": "enforced",
            "mode": "allow-list",
            "allowed_system_calls": super::seccomp::allowed_count(),
        }),
    );
    layers.insert("namespaces".into(), json!({ "state": "enforced" }));
    serde_json::Value::Object(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_memory_cgroup() -> Probe {
        let mut probe = Probe::default();
        probe.missing(
            Layer::Memory,
            "cannot create a group under /sys/fs/cgroup/memory: Read-only file system",
        );
        probe
    }

    #[test]
    fn a_missing_layer_is_refused_naming_it_and_how_to_grant_it() {
        let err = decide(&without_memory_cgroup(), &[]).expect_err("refused");
        let msg = err.to_string();
        for needle in [
            "isolation layer 'memory' is not enforceable",
            "Read-only file system",
            "Delegate=yes",
            "run it as root",
            "--allow-weaker-isolation memory (SANDBOX_ALLOW_WEAKER_ISOLATION=memory; allow_weaker_isolation = [\"memory\"] in [sandbox])",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
        // Accepting another layer does not accept this one.
        assert!(decide(&without_memory_cgroup(), &[Layer::Landlock, Layer::Pids]).is_err());
    }

    #[test]
    fn an_accepted_layer_is_degraded() {
        let degraded =
            decide(&without_memory_cgroup(), &[Layer::Memory]).expect("accepted explicitly");
        assert_eq!(degraded.len(), 1);
        assert_eq!(degraded[0].layer, Layer::Memory);
        let shown = describe(&degraded);
        assert_eq!(shown["memory"]["state"], "degraded");
        assert_eq!(shown["pids"]["state"], "enforced");
        assert_eq!(shown["seccomp"]["state"], "enforced");
        assert_eq!(shown["seccomp"]["mode"], "allow-list");
        assert!(shown["seccomp"]["allowed_system_calls"].as_u64() > Some(50));
        assert!(
            shown["memory"]["instead"]
                .as_str()
                .is_some_and(|s| s.contains("RLIMIT_AS"))
        );
    }

    #[test]
    fn nothing_missing_nothing_degraded_whatever_is_allowed() {
        assert!(
            decide(&Probe::default(), &Layer::ALL)
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn layer_names() {
        assert_eq!(Layer::parse(" Memory ", "s"), Ok(vec![Layer::Memory]));
        assert_eq!(Layer::parse("landlock", "s"), Ok(vec![Layer::Landlock]));
        assert_eq!(Layer::parse("cgroups", "s").map(|l| l.len()), Ok(4));
        let unknown = Layer::parse("cgroup", "s").expect_err("unknown");
        assert!(
            unknown.contains("memory, swap, pids, cpu, landlock"),
            "{unknown}"
        );
        let never = Layer::parse("seccomp", "s").expect_err("never");
        assert!(never.contains("cannot be weakened"), "{never}");
    }
}
