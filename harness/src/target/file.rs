//! Targets described by a file (`--target targets/<name>`): the folder's `target.toml`
//! read into a [`TargetFile`], which gives the run a [`NodeSpec`] like a built-in driver
//! does, and an adapter process as its client (`adapter.rs`). The file's format is in
//! `docs/writing-a-target.md`. Reading is strict: an unknown field, a missing one, a wrong
//! type, an unknown fault or an unfillable placeholder is an error naming the file, the
//! line and the field, before anything starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use async_trait::async_trait;
use faultline_nemeses::FaultKind;
use serde::Deserialize;
use toml::Spanned;

use super::adapter::{AdapterClient, AdapterContext};
use super::{ClientContext, NodeParams, TargetClient, TargetDriver, TargetError, TargetOptions};
use crate::backend::docker::image::is_package_name;
use crate::backend::{NodeSpec, Peering, Program, Readiness, Refusal};

/// The file a target folder is described by.
pub const TARGET_FILE: &str = "target.toml";
/// Largest target file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// How long an adapter may take to print its handshake, unless the file says.
const DEFAULT_START_TIMEOUT_MS: u64 = 10_000;
/// How long the leader probe may take, unless the file says.
const DEFAULT_LEADER_TIMEOUT_MS: u64 = 2_000;
/// Bounds on the timeouts a file may ask for.
const MAX_TIMEOUT_MS: u64 = 120_000;

/// Why a target file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TargetFileError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// A target read from its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    pub name: String,
    pub about: String,
    /// The target's folder, absolute.
    pub folder: PathBuf,
    /// The file's text, kept with each run's results.
    pub text: String,
    pub spec: NodeSpec,
    pub client: AdapterConfig,
    pub leader: Option<LeaderProbeConfig>,
}

/// How to start the target's adapter (`[client]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterConfig {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub python_requirements: Vec<String>,
    pub start_timeout_ms: u64,
}

/// The optional `[leader]` probe: a command run on the harness's host that prints the
/// leader's 0-based index, name (`n2`) or client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderProbeConfig {
    pub command: Vec<String>,
    pub timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    name: Spanned<String>,
    #[serde(default)]
    about: String,
    node: NodeDoc,
    client: ClientDoc,
    leader: Option<LeaderDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeDoc {
    program: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    client_port: u16,
    peer_port: Option<u16>,
    peer_traffic: Option<Spanned<String>>,
    peer_entry: Option<Spanned<String>>,
    packages: Option<Spanned<Vec<String>>>,
    install: Option<String>,
    #[serde(default)]
    setup: Vec<String>,
    log_files: Option<Spanned<Vec<String>>>,
    ready: Option<Spanned<ReadyDoc>>,
    #[serde(default)]
    refuse: Vec<RefuseDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadyDoc {
    port: Option<bool>,
    command: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefuseDoc {
    fault: Spanned<String>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDoc {
    command: Spanned<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    python_requirements: Vec<String>,
    start_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaderDoc {
    command: Spanned<Vec<String>>,
    timeout_ms: Option<Spanned<u64>>,
}

/// Whether `arg` (a `--target` value) names a file or folder rather than a built-in target.
pub fn looks_like_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".toml")
}

impl TargetFile {
    /// Reads the target at `path`: a folder holding `target.toml`, or the file itself.
    pub fn load(path: &Path) -> Result<TargetFile, TargetFileError> {
        let file = if path.is_dir() {
            path.join(TARGET_FILE)
        } else {
            path.to_path_buf()
        };
        let shown = file.display().to_string();
        let err = |message: String| TargetFileError {
            file: shown.clone(),
            line: None,
            message,
        };
        let meta = std::fs::metadata(&file).map_err(|e| err(format!("cannot read it: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(format!(
                "{} bytes; a target file is at most {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(&file).map_err(|e| err(format!("cannot read it: {e}")))?;
        let folder = std::fs::canonicalize(file.parent().unwrap_or(Path::new(".")))
            .map_err(|e| err(format!("cannot resolve its folder: {e}")))?;
        TargetFile::parse(&text, &shown, folder)
    }

    /// Reads a target file's `text`; `file` names it in errors, `folder` is where its
    /// relative paths point.
    pub fn parse(text: &str, file: &str, folder: PathBuf) -> Result<TargetFile, TargetFileError> {
        let at = |span: std::ops::Range<usize>, message: String| TargetFileError {
            file: file.to_string(),
            line: Some(line_of(text, span.start)),
            message,
        };
        let doc: Doc = toml::from_str(text).map_err(|e| TargetFileError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;

        let name = doc.name.get_ref();
        let name_ok = (1..=40).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(at(
                doc.name.span(),
                format!("name {name:?}: use 1 to 40 of [a-z0-9-]"),
            ));
        }

        let node = doc.node;
        let no_span = 0..0;
        let packages_span = node.packages.as_ref().map_or(no_span.clone(), |p| p.span());
        let packages: Vec<String> = node.packages.map(Spanned::into_inner).unwrap_or_default();
        let log_files_span = node.log_files.as_ref().map_or(no_span, |p| p.span());
        let log_files: Vec<String> = node.log_files.map(Spanned::into_inner).unwrap_or_default();
        let program = node.program.get_ref().trim();
        let program = if program.contains('/') {
            let rel = program.strip_prefix("./").unwrap_or(program);
            if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|p| p == "..") {
                return Err(at(
                    node.program.span(),
                    format!(
                        "node.program {program:?}: a program in the target folder is a \
                         relative path inside it (\"./start.sh\"); an installed one is a \
                         bare name (\"etcd\")"
                    ),
                ));
            }
            if !folder.join(rel).is_file() {
                return Err(at(
                    node.program.span(),
                    format!("node.program: no file {rel} in {}", folder.display()),
                ));
            }
            Program::Folder {
                path: rel.to_string(),
            }
        } else if program.is_empty() {
            return Err(at(node.program.span(), "node.program is empty".into()));
        } else {
            let install = node.install.clone().unwrap_or_else(|| {
                if packages.is_empty() {
                    format!("put {program} on the PATH")
                } else {
                    format!("apt-get install {}", packages.join(" "))
                }
            });
            Program::Installed {
                name: program.to_string(),
                install,
            }
        };
        if let Some(bad) = packages.iter().find(|p| !is_package_name(p)) {
            return Err(at(
                packages_span,
                format!("node.packages: {bad:?} is not a Debian package name"),
            ));
        }
        let peering = match (
            node.peer_port,
            node.peer_traffic.as_ref().map(|t| t.get_ref().as_str()),
        ) {
            (Some(peer_port), None | Some("proxied")) => Peering::Shared { peer_port },
            (None, None | Some("proxied")) => Peering::PerLink,
            (None, Some("direct")) => Peering::Direct,
            (_, Some(other)) => {
                let span = node.peer_traffic.as_ref().map_or(0..0, |t| t.span());
                return Err(at(
                    span,
                    if other == "direct" {
                        "node.peer_traffic = \"direct\" goes without peer_port (the nodes \
                         choose their own peer ports)"
                            .to_string()
                    } else {
                        format!("node.peer_traffic {other:?}: \"proxied\" or \"direct\"")
                    },
                ));
            }
        };
        let peer_entry = match &node.peer_entry {
            Some(e) => {
                if !e.get_ref().contains("{addr}") {
                    return Err(at(
                        e.span(),
                        "node.peer_entry must contain {addr} (where the peer is reached)".into(),
                    ));
                }
                e.get_ref().clone()
            }
            None => "{addr}".to_string(),
        };
        let readiness = match node.ready {
            None => Readiness::ClientPort,
            Some(r) => {
                let span = r.span();
                match r.into_inner() {
                    ReadyDoc {
                        port: Some(true),
                        command: None,
                    }
                    | ReadyDoc {
                        port: None,
                        command: None,
                    } => Readiness::ClientPort,
                    ReadyDoc {
                        port: None | Some(false),
                        command: Some(c),
                    } if !c.is_empty() => Readiness::Command(c),
                    _ => {
                        return Err(at(
                            span,
                            "node.ready: either { port = true } or { command = [...] }".into(),
                        ))
                    }
                }
            }
        };
        let mut refused = Vec::new();
        for r in node.refuse {
            let kind: FaultKind = r
                .fault
                .get_ref()
                .parse()
                .map_err(|e| at(r.fault.span(), format!("node.refuse.fault: {e}")))?;
            if r.reason.trim().is_empty() {
                return Err(at(
                    r.fault.span(),
                    format!("node.refuse: say why {} is refused (reason)", kind.name()),
                ));
            }
            refused.push(Refusal {
                kind,
                reason: r.reason,
            });
        }
        let spec = NodeSpec {
            target: name.clone(),
            program,
            args: node.args,
            env: node.env.into_iter().collect(),
            client_port: node.client_port,
            peering,
            peer_entry,
            readiness,
            log_files,
            wal: None,
            refused,
            setup: node.setup,
            folder: Some(folder.clone()),
            packages,
        };
        spec.check()
            .map_err(|e| at(log_files_span, format!("node: {}", e.reason)))?;

        let command = doc.client.command.get_ref();
        if command.is_empty() || command[0].trim().is_empty() {
            return Err(at(
                doc.client.command.span(),
                "client.command is empty: it names the adapter program".into(),
            ));
        }
        let start_timeout_ms = bounded(doc.client.start_timeout_ms, DEFAULT_START_TIMEOUT_MS)
            .map_err(|(span, m)| at(span, format!("client.start_timeout_ms {m}")))?;
        let client = AdapterConfig {
            command: doc.client.command.into_inner(),
            env: doc.client.env.into_iter().collect(),
            python_requirements: doc.client.python_requirements,
            start_timeout_ms,
        };
        let leader = match doc.leader {
            None => None,
            Some(l) => {
                if l.command.get_ref().is_empty() {
                    return Err(at(l.command.span(), "leader.command is empty".into()));
                }
                let timeout_ms = bounded(l.timeout_ms, DEFAULT_LEADER_TIMEOUT_MS)
                    .map_err(|(span, m)| at(span, format!("leader.timeout_ms {m}")))?;
                Some(LeaderProbeConfig {
                    command: l.command.into_inner(),
                    timeout_ms,
                })
            }
        };
        Ok(TargetFile {
            name: name.clone(),
            about: doc.about,
            folder,
            text: text.to_string(),
            spec,
            client,
            leader,
        })
    }
}

/// A timeout from the file, or `default`; an error for 0 or more than [`MAX_TIMEOUT_MS`].
fn bounded(
    value: Option<Spanned<u64>>,
    default: u64,
) -> Result<u64, (std::ops::Range<usize>, String)> {
    match value {
        None => Ok(default),
        Some(v) if (1..=MAX_TIMEOUT_MS).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err((
            v.span(),
            format!("{} is outside 1..={MAX_TIMEOUT_MS}", v.get_ref()),
        )),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[async_trait]
impl TargetDriver for TargetFile {
    fn name(&self) -> &str {
        &self.name
    }

    /// The node as the file describes it; a clock fault is refused, with the reason, for a
    /// program faultline can tell is static or built by Go even where the file is silent.
    fn node_spec(&self, _params: &NodeParams<'_>) -> Result<NodeSpec, TargetError> {
        let mut spec = self.spec.clone();
        if spec.refuses(FaultKind::Clock).is_none() {
            let file = match &spec.program {
                Program::Folder { path } => Some(self.folder.join(path)),
                Program::Installed { name, .. } => std::env::var_os("PATH")
                    .and_then(|p| crate::backend::installed::find_on_path(name, &p)),
                Program::Bundled { .. } => None,
            };
            if let Some(reason) = file.as_deref().and_then(clock_blind) {
                spec.refused.push(Refusal {
                    kind: FaultKind::Clock,
                    reason,
                });
            }
        }
        Ok(spec)
    }

    async fn client(
        &self,
        addrs: &[String],
        options: &TargetOptions,
        context: &ClientContext,
    ) -> Result<Arc<dyn TargetClient>, TargetError> {
        let adapter_err = |reason: String| TargetError::Adapter {
            target: self.name.clone(),
            reason,
        };
        let python = super::venv::python_for(&self.client.python_requirements)
            .await
            .map_err(adapter_err)?;
        let stderr_dir = context.run_dir.join("adapters");
        std::fs::create_dir_all(&stderr_dir)
            .map_err(|e| adapter_err(format!("creating {}: {e}", stderr_dir.display())))?;
        Ok(Arc::new(AdapterClient::new(
            &self.client,
            self.folder.clone(),
            python,
            addrs,
            options,
            self.leader.clone(),
            AdapterContext {
                stderr_dir,
                log: context.log.clone(),
                concurrency: context.concurrency,
            },
        )))
    }
}

/// Why libfaketime cannot skew the program in `file`, if faultline can tell: an ELF file
/// without a dynamic loader (static) or built by Go (which reads the clock through the
/// vDSO). `None` where the file is not ELF (a script) or cannot be read.
pub fn clock_blind(file: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .take(ELF_SCAN_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let elf = Elf::read(&head)?;
    if elf.go {
        return Some(format!(
            "{} is a Go program: it reads the clock through the vDSO, not libc, so \
             libfaketime cannot skew it",
            file.display()
        ));
    }
    if !elf.dynamic {
        return Some(format!(
            "{} is statically linked, so libfaketime cannot be preloaded into it",
            file.display()
        ));
    }
    None
}

/// How much of a program is read to classify it (Go's build id note is near the start).
const ELF_SCAN_BYTES: u64 = 1024 * 1024;

/// What [`clock_blind`] needs from an ELF header.
struct Elf {
    /// It names a program interpreter (a dynamic loader).
    dynamic: bool,
    /// It carries Go's build id.
    go: bool,
}

impl Elf {
    /// 64-bit little-endian ELF only (the machines faultline runs on); `None` otherwise.
    /// Go's linker writes a note named `Go` of type 4 (its build id) into a `PT_NOTE`
    /// segment near the start of every binary.
    fn read(b: &[u8]) -> Option<Elf> {
        const PT_INTERP: u32 = 3;
        const PT_NOTE: u32 = 4;
        const NOTE_GO_BUILD_ID: u32 = 4;
        if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
            return None;
        }
        let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
        let u32_at = |o: usize| {
            b.get(o..o + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let usize_at = |o: usize| {
            b.get(o..o + 8)
                .and_then(|s| usize::try_from(u64::from_le_bytes(s.try_into().ok()?)).ok())
        };
        let phoff = usize_at(0x20)?;
        let phentsize = usize::from(u16_at(0x36)?);
        let phnum = usize::from(u16_at(0x38)?).min(128);
        let mut elf = Elf {
            dynamic: false,
            go: false,
        };
        for i in 0..phnum {
            let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
            match u32_at(ph)? {
                PT_INTERP => elf.dynamic = true,
                PT_NOTE => {
                    let (mut at, size) = (usize_at(ph + 8)?, usize_at(ph + 32)?);
                    let end = at.saturating_add(size).min(b.len());
                    // Each note: namesz, descsz, type, then name and desc, 4-aligned.
                    while at + 12 <= end {
                        let namesz = u32_at(at)? as usize;
                        let descsz = u32_at(at + 4)? as usize;
                        let kind = u32_at(at + 8)?;
                        let name = b.get(at + 12..(at + 12).checked_add(namesz)?)?;
                        let name = name.split(|&c| c == 0).next().unwrap_or(name);
                        if name == b"Go" && kind == NOTE_GO_BUILD_ID {
                            elf.go = true;
                        }
                        at = at + 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
                    }
                }
                _ => {}
            }
        }
        Some(elf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "kv-demo"
about = "a demo"

[node]
program = "etcd"
args = ["--name", "{name}", "--initial-cluster", "{peers}"]
env = { GOMAXPROCS = "2" }
client_port = 2379
peer_port = 2380
peer_entry = "{name}=http://{addr}"
packages = ["etcd-server"]
setup = ["sh", "-c", "echo > {data_dir}/conf"]

[[node.refuse]]
fault = "clock"
reason = "a Go program"

[client]
command = ["{python}", "adapter.py"]
start_timeout_ms = 5000

[leader]
command = ["{python}", "leader.py", "{nodes}"]
"#;

    fn parse(text: &str) -> Result<TargetFile, TargetFileError> {
        TargetFile::parse(text, "t/target.toml", PathBuf::from("/tmp"))
    }

    #[test]
    fn a_complete_file_gives_the_node_and_the_adapter() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.name, "kv-demo");
        assert_eq!(
            t.spec.program,
            Program::Installed {
                name: "etcd".into(),
                install: "apt-get install etcd-server".into()
            }
        );
        assert_eq!(t.spec.peering, Peering::Shared { peer_port: 2380 });
        assert_eq!(t.spec.refuses(FaultKind::Clock), Some("a Go program"));
        assert_eq!(t.spec.refuses(FaultKind::Kill), None);
        assert_eq!(t.spec.packages, ["etcd-server"]);
        assert_eq!(t.spec.env, [("GOMAXPROCS".to_string(), "2".to_string())]);
        assert_eq!(t.client.command, ["{python}", "adapter.py"]);
        assert_eq!(t.client.start_timeout_ms, 5000);
        assert_eq!(t.leader.unwrap().timeout_ms, DEFAULT_LEADER_TIMEOUT_MS);
        assert_eq!(t.spec.folder.as_deref(), Some(Path::new("/tmp")));
    }

    /// Each broken file is refused with the file, the line and the field it is about.
    #[test]
    fn a_broken_file_is_refused_naming_the_line_and_the_field() {
        let cases: [(&str, &str, usize, &str); 7] = [
            (
                "client_port = 2379",
                "client_port = \"x\"",
                9,
                "invalid type",
            ),
            ("client_port = 2379", "client_prt = 2379", 9, "client_prt"),
            ("fault = \"clock\"", "fault = \"clok\"", 16, "clok"),
            ("name = \"kv-demo\"", "name = \"KV demo\"", 2, "name"),
            (
                "start_timeout_ms = 5000",
                "start_timeout_ms = 0",
                21,
                "start_timeout_ms",
            ),
            (
                "packages = [\"etcd-server\"]",
                "packages = [\"etcd server; reboot\"]",
                12,
                "node.packages",
            ),
            (
                "peer_entry = \"{name}=http://{addr}\"",
                "peer_entry = \"{name}\"",
                11,
                "{addr}",
            ),
        ];
        for (from, to, line, needle) in cases {
            assert!(GOOD.contains(from), "{from}");
            let e = parse(&GOOD.replace(from, to)).unwrap_err();
            assert_eq!(e.line, Some(line), "{to}: {e}");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("t/target.toml:{line}: ")) && text.contains(needle),
                "{to}: {text}"
            );
        }
        let e = parse(&GOOD.replace("[client]\n", "[clients]\n")).unwrap_err();
        assert!(e.to_string().contains("client"), "{e}");
    }

    #[test]
    fn a_program_in_the_folder_must_stay_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("start.sh"), "#!/bin/sh\n").unwrap();
        let with = |program: &str| {
            TargetFile::parse(
                &GOOD.replace("program = \"etcd\"", &format!("program = \"{program}\"")),
                "f",
                dir.path().to_path_buf(),
            )
        };
        assert_eq!(
            with("./start.sh").unwrap().spec.program,
            Program::Folder {
                path: "start.sh".into()
            }
        );
        for bad in ["../start.sh", "/bin/sh", "./missing.sh", "./"] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().contains("node.program"), "{bad}: {e}");
        }
    }

    #[test]
    fn static_and_go_programs_cannot_have_their_clock_skewed() {
        // This test's own executable is dynamically linked glibc Rust: skewable.
        let me = std::env::current_exe().unwrap();
        assert_eq!(clock_blind(&me), None);
        // A script is not ELF: nothing to tell.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(clock_blind(&script), None);
        // etcd, where installed, is Go.
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(etcd) = crate::backend::installed::find_on_path("etcd", &path) {
            let why = clock_blind(&etcd).unwrap();
            assert!(why.contains("Go program"), "{why}");
        }
    }

    #[test]
    fn paths_and_builtin_names_are_told_apart() {
        assert!(looks_like_path("targets/etcd"));
        assert!(looks_like_path("./x"));
        assert!(looks_like_path("db.toml"));
        assert!(!looks_like_path("etcd"));
        assert!(!looks_like_path("raftkv"));
    }
}
