//! Guards for parked listeners (issue 16): the heap a parked listener costs, and one fan-out
//! pass (a committed line written to every parked listener's socket, the kernel's loopback
//! write included) per 1,000 listeners. Real sockets on 127.0.0.1, the channel's real
//! fan-out task; the client side is plain non-blocking std sockets drained between passes.
//!
//! `cargo bench --bench parked`; under `cargo test --benches` each case runs once and the heap
//! budget is still checked, so a listener that grows fails CI before it fails a hall.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use babelcast::channel::{Channel, ChannelInfo, DirectSocket, Parked, Parking, Resume};
use babelcast::record::{Kind, Record};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Heap a parked listener may cost on the channel's side (its socket's shared state, tokio's
/// registration of the socket, the read waker, its fan-out slot); the session's own state is
/// not counted here. Measured 596 B; the budget leaves room, a regression to a task or a
/// WebSocket buffer per listener (kilobytes) does not fit.
const HEAP_BUDGET_PER_LISTENER: isize = 768;

/// Counts live heap bytes, to measure what a parked listener costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Nobody is handed back in these benches (sockets never fill); if one is, it is dropped.
struct Dropped(Mutex<usize>);

impl Resume for Dropped {
    fn resume(&self, _parked: Parked) {
        *self.0.lock().unwrap() += 1;
    }
}

fn channel() -> Arc<Channel> {
    let info = ChannelInfo {
        event: "bench".into(),
        id: "en".into(),
        lang: "en".into(),
        label: "English".into(),
        source: None,
    };
    Arc::new(Channel::new(info, 0, 0, Vec::new(), 1000, 512))
}

fn line(seq: u64) -> Record {
    Record {
        seq,
        kind: Kind::Line,
        ts: 1_700_000_000_000 + seq as i64,
        text: "The delegates agreed to continue the discussion on renewable energy after the b"
            .into(),
        lang: "en".into(),
        of: None,
        client_id: None,
        expected_lang: None,
        author: None,
    }
}

/// A channel with `n` parked listeners, and the client ends of their sockets.
struct Hall {
    ch: Arc<Channel>,
    clients: Vec<StdStream>,
    seq: u64,
    /// Heap bytes the parked listeners added, per listener.
    heap_per_listener: isize,
    _sockets: Vec<DirectSocket>,
    _shutdown: tokio_util::sync::CancellationToken,
}

fn hall(rt: &tokio::runtime::Runtime, n: usize) -> Hall {
    rt.block_on(async {
        let ch = channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let parking = Parking {
            resume: Arc::new(Dropped(Mutex::new(0))),
            ping_every: Duration::from_secs(3600),
            shutdown: shutdown.clone(),
            tracker: tokio_util::task::TaskTracker::new(),
        };
        let mut clients = Vec::with_capacity(n);
        let mut sockets = Vec::with_capacity(n);
        // One listener first, so the fan-out task and its set exist before counting.
        let park = |sockets: &mut Vec<DirectSocket>, tcp| {
            let conn = DirectSocket::new(tcp);
            conn.track_frames();
            let sub = ch.subscribe(None, 0);
            let shown = [sub.partial.borrow().clone(), sub.status.borrow().clone()];
            let parking = parking.clone();
            let feeds = || {
                let mut f = ch.fanout_feeds();
                f.parking = Some(parking);
                f
            };
            let keep: babelcast::channel::Keep = Box::new(());
            let joined = ch
                .fanout()
                .join(&conn, ch.last_seq(), shown, || true, feeds, keep);
            assert!(joined.is_ok(), "a caught-up listener parks");
            sockets.push(conn);
        };
        let mut before = 0;
        for i in 0..=n {
            if i == 1 {
                before = LIVE.load(Ordering::Relaxed);
            }
            let client = StdStream::connect(addr).unwrap();
            client.set_nonblocking(true).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            park(&mut sockets, tcp);
            clients.push(client);
        }
        // The client ends are std sockets (no heap); both Vecs were allocated before.
        let after = LIVE.load(Ordering::Relaxed);
        Hall {
            ch,
            clients,
            seq: 0,
            heap_per_listener: (after - before) / n as isize,
            _sockets: sockets,
            _shutdown: shutdown,
        }
    })
}

/// Reads everything the clients were sent, so their sockets never fill.
fn drain(clients: &mut [StdStream]) {
    let mut buf = [0u8; 4096];
    for c in clients {
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    }
}

fn parked(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("parked");
    group.sample_size(20);
    for n in [100usize, 1_000] {
        let mut h = hall(&rt, n);
        println!(
            "parked/{n}: {} B of heap per parked listener (budget {HEAP_BUDGET_PER_LISTENER} B)",
            h.heap_per_listener
        );
        assert!(
            h.heap_per_listener <= HEAP_BUDGET_PER_LISTENER,
            "a parked listener costs {} B of heap, over the budget of {HEAP_BUDGET_PER_LISTENER} B",
            h.heap_per_listener
        );
        assert_eq!(h.ch.fanout().direct_count(), n + 1);
        group.throughput(Throughput::Elements(n as u64 + 1));
        group.bench_with_input(BenchmarkId::new("fanout_pass", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let frames = h.ch.stats.frames_out.load(Ordering::Acquire);
                    let want = frames + h.clients.len() as u64;
                    h.seq += 1;
                    let started = Instant::now();
                    h.ch.commit(&line(h.seq), None);
                    while h.ch.stats.frames_out.load(Ordering::Acquire) < want {
                        std::hint::spin_loop();
                    }
                    total += started.elapsed();
                    drain(&mut h.clients);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parked);
criterion_main!(benches);
