using System.Security.Cryptography;
using System.Text.Json;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Engine.Tests.Npy;

/// <summary>
/// A sample batch past 4 GiB (ZIP64 member and archive), written streaming and checked by numpy's own zipfile +
/// npy header reader. Runs in CI; the quick local loop skips it with --filter "Category!=Large".
/// </summary>
[Trait("Category", "Large")]
public sealed class NpzLargeTests
{
    private const int Rows = 21846;          // 21846 × 256×256×3 = 4 295 098 368 bytes > 4 GiB
    private const int RowBytes = 256 * 256 * 3;

    // Row r holds bytes (7r + i) mod 256 for i in [0, RowBytes).
    private static readonly byte[] Pattern = Enumerable.Range(0, RowBytes + 256).Select(i => (byte)i).ToArray();

    private static ReadOnlySpan<byte> Row(int r) => Pattern.AsSpan((7 * r) & 255, RowBytes);

    [Fact]
    public void ArchiveOver4GiBLoadsInNumpy()
    {
        var dir = Directory.CreateTempSubdirectory("dydit-npz-large-");
        try
        {
            var path = Path.Combine(dir.FullName, "samples.npz");
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var w = new NpzWriter(path))
            {
                w.BeginArray("arr_0", DType.UInt8, Rows, 256, 256, 3);
                for (int r = 0; r < Rows; r++)
                {
                    w.Write(Row(r));
                    sha.AppendData(Row(r));
                }
                w.EndArray();
                var labels = Enumerable.Range(0, Rows).Select(i => (long)(i % 1000)).ToArray();
                w.WriteArray<long>("labels", DType.Int64, [Rows], labels);
                w.Complete();
            }
            string expectedSha = Convert.ToHexStringLower(sha.GetHashAndReset());
            Assert.True(new FileInfo(path).Length > (1L << 32));

            // Our streaming reader, batch by batch.
            using (var npz = NpzArchive.Open(path))
            {
                Assert.Equal([Rows, 256L, 256, 3], npz["arr_0"].Shape);
                using var rows = npz["arr_0"].OpenRows();
                var buffer = new byte[64 * RowBytes];
                int n, seen = 0;
                while ((n = rows.ReadRows(buffer, 64)) > 0)
                {
                    foreach (int k in new[] { 0, n - 1 })
                        Assert.True(buffer.AsSpan(k * RowBytes, RowBytes).SequenceEqual(Row(seen + k)), $"row {seen + k}");
                    seen += n;
                }
                Assert.Equal(Rows, seen);
                Assert.Equal(999, BitConverter.ToInt64(npz["labels"].ReadAllBytes(), 999 * 8));
            }

            if (!PythonPeer.Available()) return;
            var stdout = PythonPeer.Run("""
                import sys, json, hashlib, zipfile, numpy as np
                path = sys.argv[1]
                with zipfile.ZipFile(path) as zf:
                    info = zf.getinfo('arr_0.npy')
                    with zf.open(info) as f:  # zipfile verifies the CRC-32 when the member is read to its end
                        version = np.lib.format.read_magic(f)
                        shape, fortran, dtype = np.lib.format._read_array_header(f, version)
                        h = hashlib.sha256()
                        while True:
                            block = f.read(1 << 24)
                            if not block:
                                break
                            h.update(block)
                    names = zf.namelist()
                with np.load(path) as npz:
                    labels = npz['labels']
                print(json.dumps({'names': names, 'member_size': info.file_size, 'shape': list(shape), 'dtype': dtype.str,
                                  'fortran': fortran, 'sha': h.hexdigest(), 'labels_sum': int(labels.sum()),
                                  'labels_shape': list(labels.shape)}))
                """, [path], TimeSpan.FromMinutes(10));
            var seenByNumpy = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(["arr_0.npy", "labels.npy"], seenByNumpy.GetProperty("names").EnumerateArray().Select(e => e.GetString()));
            Assert.True(seenByNumpy.GetProperty("member_size").GetInt64() > uint.MaxValue);
            Assert.Equal([Rows, 256L, 256, 3], seenByNumpy.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            Assert.Equal("|u1", seenByNumpy.GetProperty("dtype").GetString());
            Assert.False(seenByNumpy.GetProperty("fortran").GetBoolean());
            Assert.Equal(expectedSha, seenByNumpy.GetProperty("sha").GetString());
            Assert.Equal(Enumerable.Range(0, Rows).Sum(i => (long)(i % 1000)), seenByNumpy.GetProperty("labels_sum").GetInt64());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
