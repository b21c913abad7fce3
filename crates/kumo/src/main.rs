//! `kumo`: an EC2 region in one binary.

mod admin;
mod bench;
mod ec2client;
mod http;
mod image;
mod ssh;
mod ssm;
mod unused_ips;
mod xml;

use clap::{Parser, Subcommand, ValueEnum};
use kumo_api::{AppState, AuthMode, Credentials};
use kumo_control::Kumo;
use kumo_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "kumo",
    version,
    about = "An EC2-compatible cloud in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the EC2 API (and STS GetCallerIdentity).
    Serve(ServeArgs),
    /// Drive a running server over HTTP and print req/s and latency percentiles.
    Bench(bench::BenchArgs),
    /// Show a subnet's used, reserved and free addresses and its free /28 blocks (works against
    /// Kumo or AWS, with the AWS CLI's credential, profile, region and endpoint settings).
    DescribeUnusedIps(unused_ips::Args),
    /// Operator actions on a running server: credits, scheduled events, guest power-off, the
    /// test clock.
    Admin(admin::Args),
    /// Base images for the compute drivers: `kumo image build`.
    Image(image::Args),
    /// Run a command in an instance through its agent, without SSH: `kumo ssm send-command
    /// i-… -- uname -a`.
    Ssm(ssm::Args),
    /// Log in to an instance by its id from this host, wherever it is (its public address, or
    /// its private one through its VPC's own link), checking its host key against the keys
    /// on its console: `kumo ssh i-… -i key.pem [-- command]`.
    Ssh(ssh::Args),
    /// (internal) The process that holds an `ns` instance's namespaces.
    #[command(name = "__ns-helper", hide = true)]
    NsHelper {
        image_root: PathBuf,
        data: PathBuf,
        mountpoint: PathBuf,
        console: PathBuf,
        hostname: String,
    },
    /// (internal) PID 1 of an `ns` instance, before it becomes the image's init.
    #[command(name = "__ns-init", hide = true)]
    NsInit { root: PathBuf, hostname: String },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
enum DriverChoice {
    /// `ns` where the host allows it and the base image is built, else `null`.
    Auto,
    /// Namespaces, overlayfs and cgroups: real instances, in about a second.
    Ns,
    /// QEMU virtual machines (KVM where a probe boot shows it works, else TCG): each instance
    /// boots its own kernel. Never chosen by `auto`: under TCG a boot takes tens of seconds.
    Vm,
    /// API state only: instances run nowhere.
    Null,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Auth {
    /// Accept any credentials; only allowed on loopback.
    Open,
    /// Verify SigV4 against `--credentials`.
    Strict,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KUMO_LISTEN", default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Where the embedded store keeps its data.
    #[arg(long, env = "KUMO_DATA_DIR", default_value = "./.kumo")]
    data_dir: PathBuf,
    /// How requests are authenticated. Default: open on loopback, strict elsewhere.
    #[arg(long, env = "KUMO_AUTH", value_enum)]
    auth: Option<Auth>,
    /// Credentials for strict auth: `ACCESS_KEY_ID SECRET [ACCOUNT_ID]` per line.
    #[arg(long, env = "KUMO_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// The account of access keys that are not 12 digits [default: 000000000000, or
    /// 123456789012 with --moto-compat].
    #[arg(long, env = "KUMO_DEFAULT_ACCOUNT")]
    default_account: Option<String>,
    /// For test suites written against moto's server mode: the default account is moto's
    /// 123456789012, and moto's public AMI catalog (moto's ids, in every region) is there
    /// beside Kumo's. Everything else stays AWS's behaviour.
    #[arg(long, env = "KUMO_MOTO_COMPAT")]
    moto_compat: bool,
    /// The region of unsigned requests.
    #[arg(long, env = "KUMO_DEFAULT_REGION", default_value = "us-east-1")]
    default_region: String,
    /// How long each transitional instance state (pending, stopping, shutting-down) lasts, in
    /// milliseconds. 0: done before a client's next call.
    #[arg(long, env = "KUMO_TRANSITION_MS", default_value_t = 0)]
    transition_ms: i64,
    /// How long instance status checks stay `initializing`, in milliseconds.
    #[arg(long, env = "KUMO_STATUS_MS", default_value_t = 0)]
    status_ms: i64,
    /// Let `kumo admin advance-clock` move this server's clock forward (for tests).
    #[arg(long, env = "KUMO_TEST_CLOCK")]
    test_clock: bool,
    /// How many instances each availability zone holds.
    #[arg(long, env = "KUMO_ZONE_CAPACITY", default_value_t = 10_000)]
    zone_capacity: usize,
    /// Log format.
    #[arg(long, env = "KUMO_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Where instances run.
    #[arg(long, env = "KUMO_DRIVER", value_enum, default_value = "auto")]
    driver: DriverChoice,
    /// Where `kumo image build` keeps base images.
    #[arg(long, env = "KUMO_IMAGES", default_value = image::DEFAULT_DIR)]
    images: PathBuf,
    /// Under strict auth, serve `/_kumo/reset` and `/moto-api/reset` to signed requests
    /// (always served on an open-auth server).
    #[arg(long, env = "KUMO_ENABLE_RESET")]
    enable_reset: bool,
    /// Under strict auth, serve `/_kumo/admin/*` (`kumo admin`) to signed requests.
    #[arg(long, env = "KUMO_ENABLE_ADMIN")]
    enable_admin: bool,
    /// Seconds a connection may wait for a request's headers, idle keep-alive included.
    #[arg(long, env = "KUMO_IDLE_TIMEOUT", default_value_t = 30)]
    idle_timeout: u64,
    /// Seconds a request body may pause between two pieces; the whole body must also arrive
    /// at 64 KiB/s or faster after that allowance.
    #[arg(long, env = "KUMO_BODY_TIMEOUT", default_value_t = 10)]
    body_timeout: u64,
    /// The most connections served at once (default: the open-file limit less a tenth).
    #[arg(long, env = "KUMO_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::DescribeUnusedIps(args) => unused_ips::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Image(args) => image::run(args),
        Command::Ssm(args) => ssm::run(args),
        Command::Ssh(args) => ssh::run(args),
        Command::NsHelper {
            image_root,
            data,
            mountpoint,
            console,
            hostname,
        } => code(kumo_compute::ns::helper::helper(
            &image_root,
            &data,
            &mountpoint,
            &console,
            &hostname,
        )),
        Command::NsInit { root, hostname } => {
            code(kumo_compute::ns::helper::init(&root, &hostname))
        }
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}

/// The driver chosen at start.
struct Chosen {
    /// The driver, unless instances run nowhere.
    compute: Option<kumo_control::Compute>,
    /// Why the null driver runs where a real one was wanted (`--driver auto`).
    null_reason: Option<String>,
    /// The base image to build in the background before anything boots.
    build: Option<Arc<kumo_control::ImageGate>>,
}

/// Why the driver asked for cannot run.
#[derive(Debug, thiserror::Error)]
enum NoDriver {
    #[error("the {0} driver cannot run here: {1}")]
    Unavailable(&'static str, String),
    #[error("the {0} driver failed to start")]
    Failed(&'static str, #[source] kumo_compute::ComputeError),
}

/// The compute driver to run, or why none but `null` can. A host that can run `ns` but has no
/// base image gets one built at first start, in the background ([`build_image`]).
fn choose_driver(args: &ServeArgs, rt: &tokio::runtime::Runtime) -> Result<Chosen, NoDriver> {
    let null = |why: Option<String>| Chosen {
        compute: None,
        null_reason: why,
        build: None,
    };
    if args.driver == DriverChoice::Null {
        return Ok(null(None));
    }
    let built = image::base_root(&args.images);
    if args.driver == DriverChoice::Vm {
        let image_dir = args.images.join(image::RECIPE);
        let why_not = kumo_compute::ns::unavailable()
            .or_else(|| {
                built.is_none().then(|| {
                    format!(
                        "no base image in {} (run `kumo image build`)",
                        args.images.display()
                    )
                })
            })
            .or_else(|| kumo_compute::vm::unavailable(&image_dir));
        if let Some(why) = why_not {
            return Err(NoDriver::Unavailable("vm", why));
        }
        let d = kumo_compute::vm::VmDriver::new(&args.data_dir, rt.handle().clone(), &image_dir)
            .map_err(|e| NoDriver::Failed("vm", e))?;
        return Ok(Chosen {
            compute: Some(kumo_control::Compute::new(
                Arc::new(d),
                built.unwrap_or_default(),
            )),
            null_reason: None,
            build: None,
        });
    }
    let why_not = kumo_compute::ns::unavailable().or_else(|| {
        (built.is_none() && !image::can_build()).then(|| {
            format!(
                "there is no base image in {} and debootstrap, which builds it, is not installed (apt-get install debootstrap debian-archive-keyring)",
                args.images.display()
            )
        })
    });
    match (why_not, args.driver) {
        (Some(why), DriverChoice::Ns) => Err(NoDriver::Unavailable("ns", why)),
        (Some(why), _) => Ok(null(Some(format!("the ns driver cannot run here: {why}")))),
        (None, _) => {
            let gate = match built {
                Some(_) => kumo_control::ImageGate::ready(),
                None => kumo_control::ImageGate::building(),
            };
            let d = kumo_compute::ns::NsDriver::new(&args.data_dir, rt.handle().clone())
                .and_then(|d| d.with_host_keys(&args.images.join("hostkeys")))
                .map_err(|e| NoDriver::Failed("ns", e))?;
            let root = args.images.join(image::RECIPE).join("rootfs");
            Ok(Chosen {
                compute: Some(kumo_control::Compute::with_image(
                    Arc::new(d),
                    root,
                    gate.clone(),
                )),
                null_reason: None,
                build: (!gate.is_ready()).then_some(gate),
            })
        }
    }
}

/// Builds the base image on a thread of its own, its progress in the log; instances launched
/// or started meanwhile stay pending and boot once it is ready.
fn build_image(dir: PathBuf, gate: Arc<kumo_control::ImageGate>) {
    tracing::info!(
        dir = %dir.display(),
        "no base image yet: building it in the background (debootstrap, about a minute); instances stay pending until it is ready"
    );
    let spawned = std::thread::Builder::new()
        .name("kumo-image-build".into())
        .spawn({
            let gate = gate.clone();
            move || {
                let built = match image::build(&dir, &image::Report::Log) {
                    Ok(_) => {
                        tracing::info!("the base image is ready: waiting instances boot now");
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "the base image could not be built; instances cannot boot until it is (`kumo image build`)");
                        false
                    }
                };
                gate.finish(built);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the image build");
        gate.finish(false);
    }
}

/// The server's control plane as the background workers hold it.
#[derive(Clone)]
struct Background(Arc<kumo_api::AppState>);

impl AsRef<kumo_control::Kumo> for Background {
    fn as_ref(&self) -> &kumo_control::Kumo {
        &self.0.kumo
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUMO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let started = Instant::now();
    init_logs(&args.log_format);
    let loopback = args.listen.ip().is_loopback();
    let mode = args
        .auth
        .unwrap_or(if loopback { Auth::Open } else { Auth::Strict });
    if mode == Auth::Open && !loopback {
        tracing::error!(listen = %args.listen, "refusing to listen beyond loopback without strict auth (--auth strict --credentials FILE)");
        return ExitCode::FAILURE;
    }
    let Some(auth) = auth_of(&args, mode) else {
        return ExitCode::FAILURE;
    };
    let Some((store, blocks)) = open_data(&args) else {
        return ExitCode::FAILURE;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let Chosen {
        compute,
        null_reason,
        build,
    } = match choose_driver(&args, &rt) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %kumo_compute::error_chain(&e), "cannot start the compute driver");
            return ExitCode::FAILURE;
        }
    };
    let state = Arc::new(AppState {
        kumo: {
            let k = Kumo::with_options(
                store,
                blocks,
                kumo_control::Options {
                    transition_ms: args.transition_ms.max(0),
                    status_ms: args.status_ms.max(0),
                    zone_capacity: args.zone_capacity,
                    test_clock: args.test_clock,
                    null_reason: null_reason.clone(),
                    moto_compat: args.moto_compat,
                },
            );
            match compute {
                Some(c) => k.with_compute(c),
                None => k,
            }
        },
        auth,
        default_account: args.default_account(),
        default_region: args.default_region,
        enable_reset: args.enable_reset,
        enable_admin: args.enable_admin,
    });
    let nofile = kumo_api::server::raise_nofile();
    let server_config = kumo_api::server::Config {
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout.max(1)),
        max_connections: args
            .max_connections
            .unwrap_or_else(|| kumo_api::server::Config::default_max_connections(nofile)),
    };
    let timing = kumo_api::BodyTiming {
        stall: std::time::Duration::from_secs(args.body_timeout.max(1)),
        ..kumo_api::BodyTiming::default()
    };
    rt.block_on(async move {
        let listener = match kumo_api::server::listen(args.listen) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, listen = %args.listen, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            listen = %args.listen,
            data_dir = %args.data_dir.display(),
            auth = if mode == Auth::Open { "open" } else { "strict" },
            ready_ms = started.elapsed().as_millis() as u64,
            max_connections = server_config.max_connections,
            open_files = nofile,
            "kumo is ready"
        );
        say_driver(state.kumo.driver_name(), null_reason.as_deref());
        // The interface endpoints carry their connections here, to the address the server
        // listens on (the loopback one where it listens on all).
        if let Ok(mut at) = listener.local_addr() {
            if at.ip().is_unspecified() {
                at.set_ip(if at.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            state.kumo.serve_endpoints(at);
        }
        if let Some(gate) = build {
            build_image(args.images.clone(), gate);
        }
        let kumo_state = state.clone();
        // The instance-type catalog is parsed off the request path.
        tokio::task::spawn_blocking(Kumo::warm_up);
        if let Err(e) = kumo_control::background::start(Background(kumo_state.clone())) {
            tracing::error!(error = %e, "cannot start the background workers");
            return ExitCode::FAILURE;
        }
        let app = kumo_api::router(state);
        let result =
            kumo_api::server::serve(listener, app, server_config, timing, shutdown()).await;
        // Instances do not outlive the server: stopped now, they boot again at start.
        let k = kumo_state.clone();
        let _ = tokio::task::spawn_blocking(move || k.kumo.shutdown()).await;
        match result {
            Ok(()) => {
                tracing::info!("kumo stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    })
}

impl ServeArgs {
    /// The account of keys that name none: as given, else moto's under --moto-compat.
    fn default_account(&self) -> String {
        match (&self.default_account, self.moto_compat) {
            (Some(a), _) => a.clone(),
            (None, true) => "123456789012".into(),
            (None, false) => "000000000000".into(),
        }
    }
}

/// The server's authentication: open, or strict with the credentials file. A problem is
/// logged, and there is none.
fn auth_of(args: &ServeArgs, mode: Auth) -> Option<AuthMode> {
    match mode {
        Auth::Open => Some(AuthMode::Open),
        Auth::Strict => {
            let Some(path) = &args.credentials else {
                tracing::error!("strict auth needs --credentials FILE");
                return None;
            };
            match Credentials::load(path, &args.default_account()) {
                Ok(c) => Some(AuthMode::Strict(c)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot load credentials");
                    None
                }
            }
        }
    }
}

/// The data directory's store and volumes (and the pagination key). A problem is logged,
/// and there are none.
fn open_data(args: &ServeArgs) -> Option<(Store, kumo_blockstore::BlockStore)> {
    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        tracing::error!(error = %e, dir = %args.data_dir.display(), "cannot create the data directory");
        return None;
    }
    if let Err(e) = kumo_control::install_paging_key(&args.data_dir) {
        tracing::error!(error = %e, dir = %args.data_dir.display(), "cannot read or make the pagination token key");
        return None;
    }
    let store = match Store::open(&args.data_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "cannot open the store");
            return None;
        }
    };
    let blocks = match kumo_blockstore::BlockStore::open(&args.data_dir) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the volume directory");
            return None;
        }
    };
    Some((store, blocks))
}

/// Says which compute driver runs, and why it is the null one when it is.
fn say_driver(driver: &str, null_reason: Option<&str>) {
    match (driver, null_reason) {
        ("null", Some(why)) => tracing::warn!(
            driver = "null",
            reason = %why,
            "compute driver: null, because {why}. Instances are API state only and run nowhere; DescribeInstances says so in their StateReason (Kumo.NullDriver)"
        ),
        ("null", None) => tracing::warn!(
            driver = "null",
            "compute driver: null. Instances are API state only and run nowhere; DescribeInstances says so in their StateReason (Kumo.NullDriver)"
        ),
        (d, _) => tracing::info!(driver = d, "compute driver: {d}. Instances boot for real"),
    }
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
