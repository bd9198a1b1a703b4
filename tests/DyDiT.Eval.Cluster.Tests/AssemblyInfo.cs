using Xunit;

// The demo generator calibrates and decodes on a one-thread CPU backend and its byte-identity tests compare files
// made in different tests; OpenBLAS's thread count is process-wide, so test classes here must not run side by side.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
