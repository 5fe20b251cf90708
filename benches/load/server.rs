//! The server process: spawning `portvakt demo` on a free loopback port, registering
//! clients and the SP with the CLI, and reading its memory and CPU from /proc.

use super::*;

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `portvakt demo` on `dir`; returns it and the time from spawn to the first
    /// successful discovery response.
    pub(crate) fn start(dir: &Path, log: bool) -> Res<(Server, Duration)> {
        Self::start_with(dir, log, None)
    }

    /// `start` with a configuration file of the caller's (the soak's sync source).
    pub(crate) fn start_with(
        dir: &Path,
        log: bool,
        config: Option<&Path>,
    ) -> Res<(Server, Duration)> {
        Self::spawn(dir, log, config, "demo")
    }

    /// `portvakt serve` on a data directory the demo has seeded: the server a municipality
    /// runs, without the demo's in-process register and its start-up sync (which hold
    /// ~130 MiB that the memory figures are not about).
    pub(crate) fn serving(dir: &Path, log: bool, config: Option<&Path>) -> Res<(Server, Duration)> {
        Self::spawn(dir, log, config, "serve")
    }

    fn spawn(
        dir: &Path,
        log: bool,
        config: Option<&Path>,
        command: &str,
    ) -> Res<(Server, Duration)> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let log_file = File::options()
                .create(true)
                .append(true)
                .open(dir.join("server.log"))
                .map_err(|e| format!("server.log: {e}"))?;
            let stdout = log_file.try_clone().map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut cmd = portvakt(dir, port, log);
            if let Some(config) = config {
                cmd = with_config(cmd, config);
            }
            let child = cmd
                .arg(command)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(log_file)
                .spawn()
                .map_err(|e| format!("cannot start {BIN}: {e}"))?;
            let mut server = Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
            };
            match server.wait_ready(port, started, Duration::from_secs(60)) {
                Ok(d) => return Ok((server, d)),
                // Most likely the port was taken between probing and binding: try another.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub(crate) fn wait_ready(
        &mut self,
        port: u16,
        started: Instant,
        limit: Duration,
    ) -> Res<Duration> {
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("server exited early: {status}"));
            }
            if probe_discovery(port) {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(format!("server not ready after {limit:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with the environment for `dir` and `port`; nothing inherited can point it
/// elsewhere.
pub(crate) fn portvakt(dir: &Path, port: u16, log: bool) -> Command {
    let mut cmd = Command::new(BIN);
    if let Some(config) = std::env::var_os("PORTVAKT_BENCH_CONFIG").filter(|v| !v.is_empty()) {
        cmd.arg("--config").arg(config);
    }
    cmd.current_dir(dir)
        .env("PORTVAKT_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTVAKT_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("PORTVAKT_DATA_DIR", dir)
        .env("PORTVAKT_LOG", if log { "info" } else { "warn" })
        .env_remove("PORTVAKT_CONFIG")
        .env_remove("PORTVAKT_DATABASE_URL")
        .env_remove("PORTVAKT_MODE")
        .env_remove("PORTVAKT_KEK_FILE");
    cmd
}

pub(crate) fn free_port() -> Res<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// One blocking HTTP/1.1 GET of the discovery document; true on a 200 with a body.
pub(crate) fn probe_discovery(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req =
        format!("GET {DISCOVERY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200") && buf.windows(6).any(|w| w == b"issuer")
}

/// `portvakt client add` against the data directory, secret on standard input.
pub(crate) fn add_client(dir: &Path, id: &str, secret: &str, args: &[&str]) -> Res<()> {
    let mut cmd = portvakt(dir, 9, false);
    cmd.args(["client", "add", "--client-id", id, "--secret-stdin"])
        .args(args);
    run_with_stdin(cmd, secret).map_err(|e| format!("client add {id}: {e}"))
}

/// Runs a CLI command with `input` (a password or a secret) on its standard input; `Err`
/// carries its standard error when it fails.
pub(crate) fn run_with_stdin(mut cmd: Command, input: &str) -> Res<()> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(())
}

/// The benchmark's relying party: code flow with refresh tokens, one released claim.
pub(crate) fn add_rp(dir: &Path) -> Res<()> {
    add_rp_as(dir, RP_ID, RP_SECRET)
}

/// `add_rp` under another client id.
pub(crate) fn add_rp_as(dir: &Path, id: &str, secret: &str) -> Res<()> {
    add_client(
        dir,
        id,
        secret,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--release",
            "given_name",
        ],
    )
}

/// `portvakt sp add` against the data directory: the benchmark's SAML SP (HTTP-POST ACS,
/// unsigned requests, persistent NameID, three attributes).
pub(crate) fn add_sp(dir: &Path) -> Res<()> {
    add_sp_as(dir, SP_ENTITY_ID, SP_ACS)
}

/// `add_sp` for another entity id and ACS.
pub(crate) fn add_sp_as(dir: &Path, entity_id: &str, acs: &str) -> Res<()> {
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false" WantAssertionsSigned="true">
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#
    );
    let path = dir.join("bench-sp.xml");
    std::fs::write(&path, metadata).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = portvakt(dir, 9, false)
        .args(["sp", "add", "--metadata"])
        .arg(&path)
        .args(["--release", "givenName", "--release", "mail"])
        .args([
            "--release",
            "eduPersonPrincipalName",
            "--nameid",
            "persistent",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "sp add: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

pub(crate) fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the process's peak RSS (VmHWM) over from its RSS now (proc(5), clear_refs),
/// so a measurement's peak is its own and not that of an earlier one.
pub(crate) fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// utime + stime of a process ("self" or a pid), in seconds.
pub(crate) fn proc_cpu(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: field 3 (state) is f[0]; utime is field 14, stime field 15.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / CLK_TCK
}

/// Busy CPU time of the whole machine (all cores), in seconds, from /proc/stat.
pub(crate) fn system_busy() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is already in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    busy as f64 / CLK_TCK
}

/// CPU used during a measurement, each as a fraction of one core (2.0 = both cores).
#[derive(Clone, Copy, Default)]
pub(crate) struct Cpu {
    pub(crate) server: f64,
    /// This benchmark process (NaN for wrk rows: wrk is a separate process).
    pub(crate) bench: f64,
    /// Everything else on the machine: other builds and tests, wrk, the kernel's own work.
    pub(crate) other: f64,
}

pub(crate) struct CpuMeter {
    pub(crate) pid: String,
    pub(crate) server: f64,
    pub(crate) bench: f64,
    pub(crate) system: f64,
    pub(crate) at: Instant,
}

impl CpuMeter {
    pub(crate) fn start(pid: u32) -> Self {
        let pid = pid.to_string();
        Self {
            server: proc_cpu(&pid),
            bench: proc_cpu("self"),
            system: system_busy(),
            pid,
            at: Instant::now(),
        }
    }

    pub(crate) fn read(&self) -> Cpu {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let server = (proc_cpu(&self.pid) - self.server) / wall;
        let bench = (proc_cpu("self") - self.bench) / wall;
        let system = (system_busy() - self.system) / wall;
        Cpu {
            server,
            bench,
            other: (system - server - bench).max(0.0),
        }
    }
}

/// A simulated register (`portvakt ss12000-mock`), killed when dropped.
pub(crate) struct Register(Child);

impl Drop for Register {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `portvakt ss12000-mock` with `persons` people on a free loopback port; returns it
/// and its base URL once it accepts connections (generating a large one takes minutes).
pub(crate) fn start_mock(dir: &Path, persons: &str) -> Res<(Register, String)> {
    let port = free_port()?;
    let log = File::create(dir.join("register.log")).map_err(|e| e.to_string())?;
    let child = Command::new(BIN)
        .args(["ss12000-mock", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--persons", persons])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the SS 12000 mock: {e}"))?;
    let register = Register(child);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if started.elapsed() > Duration::from_secs(300) {
            return Err("the SS 12000 mock did not start within 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((register, format!("http://127.0.0.1:{port}/v2.0/")))
}
