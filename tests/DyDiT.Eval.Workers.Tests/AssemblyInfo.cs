using Xunit;

// Byte-identity tests (per-sample noise, batch independence) need every BLAS call to run with the same thread count.
// The convolutions (VAE decoder) switch OpenBLAS to one thread process-wide while they run, so test classes of this
// assembly must not run side by side.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
