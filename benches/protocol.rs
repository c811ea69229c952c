//! Wire format hot paths: serialising a line once (`ServerMsg::to_frame`), framing it for the
//! direct fan-out, and parsing publisher messages, in English, Chinese and Arabic.
//! `cargo bench --bench protocol`; under `cargo test --benches` each case runs once.

use std::hint::black_box;

use babelcast::channel::encode;
use babelcast::protocol::{parse_client, ServerMsg};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const TEXTS: [(&str, &str); 3] = [
    (
        "en",
        "The delegates agreed to continue the discussion on renewable energy after the b",
    ),
    (
        "zh",
        "各位代表同意在茶歇之后继续讨论可再生能源问题，主席感谢各国代",
    ),
    ("ar", "اتفق المندوبون على مواصلة النقاش حول الطاقة المتجد"),
];

fn encode_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (lang, text) in TEXTS {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("line_{lang}"), |b| {
            b.iter(|| {
                ServerMsg::Line {
                    seq: black_box(123_456),
                    text: black_box(text).into(),
                    lang: black_box(lang).into(),
                    ts: black_box(1_700_000_000_000),
                    expected_lang: None,
                }
                .to_frame()
            })
        });
    }
    let frame = ServerMsg::Line {
        seq: 1,
        text: TEXTS[0].1.into(),
        lang: "en".into(),
        ts: 1,
        expected_lang: None,
    }
    .to_frame();
    group.bench_function("websocket_frame", |b| b.iter(|| encode(black_box(&frame))));
    group.finish();
}

fn decode_client(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (lang, text) in TEXTS {
        let fin = serde_json::json!({"type": "final", "text": text, "id": "lg-1-0-42"}).to_string();
        let partial = serde_json::json!({"type": "partial", "text": text}).to_string();
        group.throughput(Throughput::Bytes(fin.len() as u64));
        group.bench_function(format!("final_{lang}"), |b| {
            b.iter(|| parse_client(black_box(&fin)).expect("valid"))
        });
        group.bench_function(format!("partial_{lang}"), |b| {
            b.iter(|| parse_client(black_box(&partial)).expect("valid"))
        });
    }
    group.bench_function("bad_json", |b| {
        b.iter(|| parse_client(black_box("{\"type\":\"final\",\"text\":")).is_err())
    });
    group.finish();
}

criterion_group!(benches, encode_line, decode_client);
criterion_main!(benches);
