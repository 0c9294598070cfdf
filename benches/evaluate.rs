//! Plan evaluations per second: every example plan, evaluated with the built-in catalog.
//! Run with `cargo bench --bench evaluate`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cutover::input::read_plans;
use cutover::rules::{Catalog, evaluate};

fn example_plans() -> Vec<cutover::api::MaintenancePlanSpec> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut plans = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in read_plans(&text, &path.display().to_string()).unwrap() {
                plans.push(doc.plan.spec);
            }
        }
    }
    plans
}

fn bench(c: &mut Criterion) {
    let plans = example_plans();
    let catalog = Catalog::builtin();
    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(plans.len() as u64));
    group.bench_function("example plans", |b| {
        b.iter(|| {
            for plan in &plans {
                std::hint::black_box(evaluate(std::hint::black_box(plan), catalog).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
