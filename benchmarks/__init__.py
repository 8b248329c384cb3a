"""calcsdk.benchmarks: latency and accuracy harnesses; results under benchmarks/results/."""
