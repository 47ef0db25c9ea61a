// Throughput and memory of the accounting hook. Not a test: it prints figures.
//
//   swift build -c release --product AccountingBench
//   .build/release/AccountingBench [entries (default 1000000)]

await Benchmark.run()
