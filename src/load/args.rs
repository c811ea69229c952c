//! The parameters of a `babelcast load` run: its command-line arguments (clap) and their
//! defaults, which the report echoes back.

use std::path::PathBuf;

use serde::Serialize;

/// `babelcast load`: the run's parameters.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct LoadConfig {
    /// Server base URL (ws://host:port or http://host:port; wss:// or https:// with --ca-file).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    pub url: String,
    /// Event id.
    #[arg(long, default_value = "demo")]
    pub event: String,
    /// Channel ids, comma-separated; listeners and publishers are spread over them.
    #[arg(long, default_value = "en", value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Publish token (the same for every channel).
    #[arg(long, default_value = "", hide_default_value = true)]
    #[serde(skip)]
    pub token: String,
    /// Listener connections to open.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub listeners: usize,
    /// Publishers per channel.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Finals per second, per publisher.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Partials per second, per publisher (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub partial_rate: f64,
    /// Caption size in bytes of UTF-8 text (the timing token included).
    #[arg(long, default_value_t = 80)]
    pub size: usize,
    /// Caption language: en, zh, ar, or mix (cycles through all three).
    #[arg(long, default_value = "en")]
    pub text: String,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Seconds between a publisher coming on air (connected: its listeners are sent the new
    /// status) and its first line, as an interpreter who joins the booth and then speaks;
    /// the seconds of publishing count from the first line. 0: the first line at once.
    #[arg(long, default_value_t = 0.5)]
    pub on_air_secs: f64,
    /// Seconds to wait after publishing for the last acks and deliveries.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,
    /// Seconds to let the server settle after the listeners connect, before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    pub settle_secs: f64,
    /// Fraction of listeners that read slowly (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub slow_fraction: f64,
    /// Pause of a slow listener after every frame, in milliseconds, while publishing runs.
    #[arg(long, default_value_t = 200)]
    pub slow_delay_ms: u64,
    /// Extra work of every listener per frame received, in microseconds of busy CPU (a phone
    /// is slower than the load generator), while publishing runs.
    #[arg(long, default_value_t = 0)]
    pub read_delay_us: u64,
    /// Receive buffer of a slow listener's socket, in bytes (a phone on poor Wi-Fi has a small
    /// window; a large one would hide slowness from the server for a long time). 0: default.
    #[arg(long, default_value_t = 8192)]
    pub slow_rcvbuf: u32,
    /// Client-side reconnect storm: after this many seconds of publishing (from the first
    /// line) every listener drops
    /// its socket at once and reconnects with `since=`.
    #[arg(long)]
    pub drop_at: Option<f64>,
    /// Local source addresses 127.0.0.1, 127.0.0.2, ... to spread listeners over, round-robin
    /// (each has about 28,000 ephemeral ports); when one runs out of ports a listener moves on
    /// to the next ones, up to 127.0.0.254. Loopback targets only.
    #[arg(long, default_value_t = 1)]
    pub source_addrs: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Listeners (the first ones) that also ask for the channel's sound (`?audio=1`); with any,
    /// a sound feed per channel sends packets while publishing runs.
    #[arg(long, default_value_t = 0)]
    pub audio_listeners: usize,
    /// Sound packets per second per channel (50: 20 ms Opus packets).
    #[arg(long, default_value_t = 50.0)]
    pub audio_rate: f64,
    /// Bytes of each Opus packet (60: about 24 kbit/s at 20 ms).
    #[arg(long, default_value_t = 60)]
    pub audio_bytes: usize,
    /// The server's pid, to read its memory and CPU from /proc (same machine only); several,
    /// comma-separated, are added up (a server behind a TLS proxy: the proxy's processes too).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Listen only, no publishers: after connecting, wait for `--target-file` to name the
    /// channels' last seq (another `babelcast load` publishes, maybe to another node), then
    /// check that every listener got every line up to it.
    #[arg(long, requires = "target_file")]
    pub listen_only: bool,
    /// Written once every listener is connected and the server's idle memory is read (another
    /// process may start publishing then).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// With `--listen-only`: the file that will hold the channels' last seq once publishing
    /// is over (`last_seqs` of the publishing run's JSON report), comma-separated per channel.
    /// Waited for at most `--duration-secs` plus `--drain-secs`.
    #[arg(long)]
    pub target_file: Option<PathBuf>,
    /// PEM file of the certificate authority (or self-signed certificate) a wss:// server's
    /// certificate is checked against.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "ws://127.0.0.1:8080".into(),
            event: "demo".into(),
            channels: vec!["en".into()],
            token: String::new(),
            listeners: 1000,
            publishers: 1,
            rate: 20.0,
            partial_rate: 0.0,
            size: 80,
            text: "en".into(),
            duration_secs: 10.0,
            on_air_secs: 0.5,
            drain_secs: 30,
            settle_secs: 2.0,
            slow_fraction: 0.0,
            slow_delay_ms: 200,
            slow_rcvbuf: 8192,
            read_delay_us: 0,
            drop_at: None,
            source_addrs: 1,
            connect_concurrency: 128,
            audio_listeners: 0,
            audio_rate: 50.0,
            audio_bytes: 60,
            server_pid: Vec::new(),
            listen_only: false,
            ready_file: None,
            target_file: None,
            ca_file: None,
            allow_remote: false,
            json: false,
            quiet: true,
        }
    }
}
