//! Fan-out of one committed line to N in-memory subscribers (N = 10 … 10,000): the channel's
//! commit (serialise once, history, broadcast ring) plus every subscriber taking the shared
//! frame. `cargo bench --bench fanout`; under `cargo test --benches` each case runs once.

use std::hint::black_box;

use babelcast::channel::{Channel, ChannelInfo};
use babelcast::record::{Kind, Record};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn channel() -> Channel {
    let info = ChannelInfo {
        event: "bench".into(),
        id: "en".into(),
        lang: "en".into(),
        label: "English".into(),
        source: None,
    };
    Channel::new(info, 0, 0, Vec::new(), 1000, 512)
}

fn line(seq: u64) -> Record {
    Record {
        seq,
        kind: Kind::Line,
        ts: 1_700_000_000_000 + seq as i64,
        // An 80-byte caption, like the end-to-end bench.
        text: "The delegates agreed to continue the discussion on renewable energy after the b"
            .into(),
        lang: "en".into(),
        of: None,
        client_id: None,
        expected_lang: None,
        author: None,
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for n in [10usize, 100, 1_000, 10_000] {
        let ch = channel();
        let mut subs: Vec<_> = (0..n).map(|_| ch.subscribe(None, 0)).collect();
        let mut seq = 0;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("commit_and_receive", n), &n, |b, _| {
            b.iter(|| {
                seq += 1;
                ch.commit(&line(seq), None);
                for s in subs.iter_mut() {
                    let c = s.events.try_recv().expect("every subscriber gets the line");
                    black_box(c.frame.len());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
