using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using DyDiT.Eval.Engine.Formats;
using DyDiT.Eval.Engine.Formats.Npy;
using DyDiT.Eval.Engine.Tests.Torch;
using DyDiT.Eval.Tests.Common;
using Xunit;

namespace DyDiT.Eval.Cli.Tests;

/// <summary>
/// Malformed files made here, each fed to a verb that reads it through the real CLI. Every row asserts the exit
/// code, that the one-line message names the file (and the key or array where there is one), that no control
/// character from the file reaches the terminal, that nothing in a pickle ran (no marker file), and that no output
/// or temporary file is left in the output folder.
/// </summary>
public sealed class BadInputCorpusTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dydit-corpus-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>
    /// One row: <see cref="Make"/> writes the bad file into the folder (given the marker path a hostile pickle would
    /// create) and returns its path; <see cref="Args"/> gives the command line (bad file, output folder).
    /// </summary>
    private sealed record Case(Func<string, string, string> Make, Func<string, string, string[]> Args, int Exit, params string[] Names)
    {
        /// <summary>The file the message must name when it is not the one on the command line (a spec's checkpoint, a ledger), by name in the input folder.</summary>
        public string? Culprit { get; init; }
    }

    private static string[] Inspect(string file, string _) => ["inspect", file];

    private static string[] InspectJson(string file, string _) => ["inspect", file, "--json"];

    private static string[] ForwardCheckpoint(string file, string outDir) =>
        ["forward", "--net", "dit", "--config", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", file,
         "--inputs", GoodDitInputs(outDir), "-o", Path.Combine(outDir, "o.npz")];

    private static string[] ForwardInputs(string file, string outDir) =>
        ["forward", "--net", "dit", "--config", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", Fixtures.Path("dit", "dit_tiny.pt"),
         "--inputs", file, "-o", Path.Combine(outDir, "o.npz")];

    private static string[] ForwardVae(string file, string outDir) =>
        ["forward", "--net", "vae", "--config", Fixtures.Path("vae", "vae_tiny", "config.json"), "--checkpoint", file,
         "--inputs", Fixtures.Path("vae", "vae_tiny_io.npz"), "-o", Path.Combine(outDir, "o.npz")];

    private static string[] Sample(string file, string outDir) =>
        ["sample", "--model", Fixtures.Path("dit", "dit_tiny.json"), "--checkpoint", file, "--vae", Fixtures.Path("vae", "vae_tiny"),
         "--num-samples", "2", "--seed", "1", "--steps", "2", "--threads", "1", "-o", Path.Combine(outDir, "s.npz")];

    private static string[] EvaluateRef(string file, string outDir) =>
        ["evaluate", "--ref", file, "--sample", Fixtures.Path("npz", "savez_ref_batch.npz"), "--json", Path.Combine(outDir, "m.json")];

    private static string[] Run(string file, string _) => ["run", "--config", file, "--workers", "1", "--threads", "1", "--no-evaluate"];

    // The good inputs for forward live beside the output folder (the output folder must stay empty).
    private static string GoodDitInputs(string outDir)
    {
        string path = Path.Combine(Path.GetDirectoryName(outDir)!, "good_in.npz");
        if (File.Exists(path)) return path;
        using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
        return NpzFiles.Write(Path.GetDirectoryName(path)!, "good_in.npz", NpzFiles.As("x", io["x"]), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
    }

    // ---- builders -------------------------------------------------------------------------------------------

    private static string Write(string dir, string name, byte[] bytes)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static string WriteText(string dir, string name, string text) => Write(dir, name, Encoding.UTF8.GetBytes(text));

    /// <summary>An .npy v1 stream with the given header dict text (padded as numpy pads it) and raw data.</summary>
    private static byte[] Npy(string dict, byte[] data, byte major = 1, byte[]? magic = null)
    {
        var text = Encoding.Latin1.GetBytes(dict);
        int pre = major == 1 ? 10 : 12;
        int total = (pre + text.Length + 1 + 63) / 64 * 64;
        var header = new byte[total];
        (magic ?? [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']).CopyTo(header, 0);
        header[6] = major;
        header[7] = 0;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)(total - pre));
        else BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)(total - pre));
        text.CopyTo(header, pre);
        for (int i = pre + text.Length; i < total - 1; i++) header[i] = (byte)' ';
        header[total - 1] = (byte)'\n';
        return [.. header, .. data];
    }

    private static byte[] F32Npy(string shape, int values) => Npy($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}", new byte[values * 4]);

    /// <summary>A zip (stored or deflated) with the given members, as numpy's savez writes them.</summary>
    private static byte[] Zip(bool deflate, params (string Name, byte[] Data)[] members)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in members)
            {
                using var s = zip.CreateEntry(name, deflate ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        }
        return ms.ToArray();
    }

    private static byte[] GoodNpz() => Zip(false, ("arr_0.npy", F32Npy("(2, 3)", 6)), ("labels.npy", Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", new byte[16])));

    /// <summary>
    /// A zip whose central directory lists the one member of <paramref name="single"/> once per name in
    /// <paramref name="names"/> (each name as long as the original): every entry points at the same bytes.
    /// </summary>
    private static byte[] SharedMemberZip(byte[] single, params string[] names)
    {
        int cd = CentralDirectory(single), eocd = Eocd(single);
        var entry = single[cd..eocd];
        var result = new List<byte>(single[..cd]);
        foreach (var name in names)
        {
            var e = (byte[])entry.Clone();
            Encoding.ASCII.GetBytes(name).CopyTo(e, 46);
            result.AddRange(e);
        }
        var end = single[eocd..];
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(8), (ushort)names.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(10), (ushort)names.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(12), (uint)(entry.Length * names.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(16), (uint)cd);
        result.AddRange(end);
        return [.. result];
    }

    /// <summary>{'w': [t, t, t, …]}: one zero-stride tensor of 2^24 elements (the most a repeated view may have) referenced <paramref name="count"/> times through the memo.</summary>
    private static byte[] RepeatedTensorCheckpoint(int count)
    {
        var p = new PickleBuilder().Proto(2).EmptyDict().Str("w").Op((byte)']');
        Tensor(p, "0", 4, 0, [4096, 4096], [0, 0]).Op((byte)'q').Raw(0).Op((byte)'a');
        for (int i = 1; i < count; i++) p.Op((byte)'h').Raw(0).Op((byte)'a');
        var pkl = p.Op((byte)'s').Stop().ToArray();
        return CheckpointFiles.Zip(("archive/data.pkl", pkl), ("archive/data/0", new byte[16]), ("archive/version", "3\n"u8.ToArray()));
    }

    private static int Eocd(byte[] zip) => zip.Length - 22; // no comment in what ZipArchive writes

    private static int CentralDirectory(byte[] zip) => (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(Eocd(zip) + 16));

    private static byte[] Patch(byte[] bytes, Action<byte[]> change)
    {
        var copy = (byte[])bytes.Clone();
        change(copy);
        return copy;
    }

    // Pickle pieces for torch checkpoints (protocol 2).
    private static PickleBuilder Long(PickleBuilder p, long v)
    {
        if (v is >= int.MinValue and <= int.MaxValue) return p.Int((int)v);
        return p.Op(0x8a).Raw(8).Raw(BitConverter.GetBytes(v));
    }

    private static PickleBuilder Tensor(PickleBuilder p, string storage, long numel, long offset, long[] size, long[] stride, string storageType = "FloatStorage")
    {
        p.Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", storageType).Str(storage).Str("cpu");
        Long(p, numel).Tuple().Op((byte)'Q');
        Long(p, offset).Mark();
        foreach (var s in size) Long(p, s);
        p.Tuple().Mark();
        foreach (var s in stride) Long(p, s);
        return p.Tuple().Op(0x89).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
    }

    /// <summary>A zip checkpoint: {key: tensor on storage '0' of <paramref name="numel"/> floats, given view}.</summary>
    private static byte[] ViewCheckpoint(string key, long numel, long offset, long[] size, long[] stride, int storageBytes = -1)
    {
        var p = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Str(key);
        var pkl = Tensor(p, "0", numel, offset, size, stride).Op((byte)'s').Stop().ToArray();
        return CheckpointFiles.Zip(("archive/data.pkl", pkl), ("archive/data/0", new byte[storageBytes < 0 ? numel * 4 : storageBytes]),
            ("archive/version", "3\n"u8.ToArray()));
    }

    private static byte[] ZipCheckpoint(byte[] pkl, string prefix = "archive") =>
        CheckpointFiles.Zip(($"{prefix}/data.pkl", pkl), ($"{prefix}/version", "3\n"u8.ToArray()));

    /// <summary>{'model': module.name("touch MARKER")} through GLOBAL + REDUCE.</summary>
    private static byte[] EvilPickle(string module, string name, string marker) =>
        new PickleBuilder().Proto(2).EmptyDict().Str("model").Global(module, name).Str("touch " + marker).Tuple1().Reduce().Op((byte)'s').Stop().ToArray();

    private static byte[] EvilStackGlobal(string module, string name, string argument) =>
        new PickleBuilder().Proto(4).StackGlobal(module, name).Str(argument).Tuple1().Reduce().Stop().ToArray();

    private static byte[] Safetensors(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        return [.. BitConverter.GetBytes((ulong)h.Length), .. h, .. new byte[dataBytes]];
    }

    private static string GoodSpecText(string dir, string overrides = "")
    {
        string F(params string[] p) => Fixtures.Path(p).Replace("\\", "/");
        return $$"""
            {"name": "corpus", "model": "{{F("dit", "dit_tiny.json")}}", "checkpoint": "{{F("dit", "dit_tiny.pt")}}",
             "vae": "{{F("vae", "vae_tiny")}}", "num_samples": 4, "seed": 5, "steps": 2,
             "shard_size": 2, "batch_size": 2, "output": "{{Path.Combine(dir, "out").Replace("\\", "/")}}"{{overrides}}}
            """;
    }

    private const string Esc = "\u001b";

    private static readonly Dictionary<string, Case> Cases = new()
    {
        // ---- npz: the zip container ----
        ["npz_truncated_half"] = new((d, _) => { var z = GoodNpz(); return Write(d, "half.npz", z[..(z.Length / 2)]); }, InspectJson, 1),
        ["npz_no_end_record"] = new((d, _) => { var z = GoodNpz(); return Write(d, "noeocd.npz", z[..^22]); }, Inspect, 1),
        ["npz_central_directory_offset_past_end"] = new((d, _) => Write(d, "cdoff.npz",
            Patch(GoodNpz(), z => BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(Eocd(z) + 16), 0x7fff0000))), Inspect, 1),
        ["npz_central_directory_count_lies"] = new((d, _) => Write(d, "cdcount.npz",
            Patch(GoodNpz(), z => { BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(Eocd(z) + 8), 60000); BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(Eocd(z) + 10), 60000); })), Inspect, 1),
        ["npz_bad_central_signature"] = new((d, _) => Write(d, "cdsig.npz", Patch(GoodNpz(), z => z[CentralDirectory(z)] = (byte)'X')), Inspect, 1),
        ["npz_member_size_lies"] = new((d, _) => Write(d, "sizes.npz", Patch(GoodNpz(), z =>
        {
            int c = CentralDirectory(z);
            BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(c + 20), 0x7ffffff0);
            BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(c + 24), 0x7ffffff0);
        })), Inspect, 1, "arr_0"),
        ["npz_local_header_offset_past_end"] = new((d, _) => Write(d, "local.npz",
            Patch(GoodNpz(), z => BinaryPrimitives.WriteUInt32LittleEndian(z.AsSpan(CentralDirectory(z) + 42), 0x7ff00000))), Inspect, 1),
        ["npz_member_crc_mismatch"] = new((d, _) => Write(d, "crc.npz", Patch(GoodNpz(), z =>
        {
            int npy = 30 + BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(28));
            z[npy + 10 + BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(npy + 8)) + 3] ^= 0x40; // a data byte of arr_0, after its npy header
        })), Inspect, 1, "arr_0", "CRC"),
        ["npz_corrupt_deflate"] = new((d, _) => Write(d, "deflate.npz", Patch(Zip(true, ("arr_0.npy", F32Npy("(64, 64)", 4096))), z =>
        {
            int data = 30 + BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(28));
            for (int i = 0; i < 8; i++) z[data + i] = 0xff;
        })), Inspect, 1, "arr_0"),
        ["npz_unknown_compression_method"] = new((d, _) => Write(d, "method.npz", Patch(GoodNpz(), z =>
        {
            BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(8), 12);
            BinaryPrimitives.WriteUInt16LittleEndian(z.AsSpan(CentralDirectory(z) + 10), 12);
        })), Inspect, 1, "arr_0"),
        ["npz_encrypted_member"] = new((d, _) => Write(d, "encrypted.npz", Patch(GoodNpz(), z =>
        {
            z[6] |= 1;
            z[CentralDirectory(z) + 8] |= 1;
        })), Inspect, 1, "arr_0"),

        ["npz_members_overlap"] = new((d, _) => Write(d, "overlap.npz", SharedMemberZip(Zip(false, ("arr_0.npy", F32Npy("(1000,)", 1000))),
            [.. Enumerable.Range(0, 500).Select(i => $"a{i:d3}0.npy")])), Inspect, 1, "overlap"),
        ["npz_duplicate_member_name"] = new((d, _) => Write(d, "dupname.npz", SharedMemberZip(Zip(false, ("arr_0.npy", F32Npy("(4,)", 4))), "arr_0.npy", "arr_0.npy")), Inspect, 1, "arr_0"),

        // ---- npz: the .npy members ----
        ["npz_wrong_npy_magic"] = new((d, _) => Write(d, "magic.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new byte[8], magic: "\x93NUMPX"u8.ToArray())))),
            Inspect, 1, "arr_0"),
        ["npz_shape_vs_data_length"] = new((d, _) => Write(d, "short.npz", Zip(false, ("arr_0.npy", F32Npy("(10,)", 2)))), Inspect, 1, "arr_0", "(10)"),
        ["npz_huge_declared_shape"] = new((d, _) => Write(d, "huge.npz", Zip(false, ("images.npy", F32Npy("(1000000000000, 1000000000000)", 1)))), Inspect, 1, "images"),
        ["npz_negative_shape"] = new((d, _) => Write(d, "negative.npz", Zip(false, ("arr_0.npy", F32Npy("(-4,)", 0)))), Inspect, 1, "arr_0"),
        ["npz_object_dtype"] = new((d, _) => Write(d, "object.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", new byte[16])))), Inspect, 1, "arr_0", "|O"),
        ["npz_complex_dtype"] = new((d, _) => Write(d, "complex.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", new byte[16])))), Inspect, 1, "arr_0", "<c8"),
        ["npz_fortran_order_not_a_bool"] = new((d, _) => Write(d, "fortran.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '<f4', 'fortran_order': 'yes', 'shape': (2, 2), }", new byte[16])))), Inspect, 1, "arr_0"),
        ["npz_fortran_order_short_data"] = new((d, _) => Write(d, "fortran_short.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 5), }", new byte[16])))), Inspect, 1, "arr_0"),
        ["npz_header_missing_shape"] = new((d, _) => Write(d, "noshape.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '<f4', 'fortran_order': False, }", new byte[16])))), Inspect, 1, "arr_0", "shape"),
        ["npz_header_not_a_dict"] = new((d, _) => Write(d, "notdict.npz", Zip(false, ("arr_0.npy", Npy("[1, 2, 3]", new byte[16])))), Inspect, 1, "arr_0"),
        ["npz_header_length_past_member"] = new((d, _) => Write(d, "hlen.npz", Zip(false, ("arr_0.npy", Patch(F32Npy("(2,)", 2), b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), 60000))))), Inspect, 1, "arr_0"),
        ["npz_control_characters_in_member_name"] = new((d, _) => Write(d, "ansi.npz", Zip(false, ($"evil{Esc}[2Jname.npy", F32Npy("(10,)", 2)))), Inspect, 1, "evil\\u001b[2Jname"),

        // ---- lone .npy ----
        ["npy_truncated"] = new((d, _) => Write(d, "trunc.npy", F32Npy("(100,)", 100)[..200]), Inspect, 1),
        ["npy_unknown_version"] = new((d, _) => Write(d, "v9.npy", Patch(F32Npy("(2,)", 2), b => b[6] = 9)), Inspect, 1, "9"),
        ["npy_garbage_header"] = new((d, _) => Write(d, "garbage.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': __import__('os')}", new byte[8])), Inspect, 1),
        ["npy_huge_shape_tiny_file"] = new((d, _) => Write(d, "huge.npy", F32Npy("(9223372036854775807,)", 1)), Inspect, 1),

        // ---- forward --inputs ----
        ["forward_inputs_missing_y"] = new((d, _) =>
        {
            using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
            return NpzFiles.Write(d, "noy.npz", NpzFiles.As("x", io["x"]), NpzFiles.As("t", io["t"]));
        }, ForwardInputs, 1, "'y'"),
        ["forward_inputs_x_wrong_dtype"] = new((d, _) =>
        {
            using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
            var x = io["x"];
            return NpzFiles.Write(d, "xint.npz", ("x", DType.Int32, x.Shape.ToArray(), new byte[x.ElementCount * 4]), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
        }, ForwardInputs, 1, "'x'", "int32"),
        ["forward_inputs_x_wrong_rank"] = new((d, _) =>
        {
            using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
            var x = io["x"];
            return NpzFiles.Write(d, "xrank.npz", ("x", DType.Float32, [x.ElementCount], x.ReadAllBytes()), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
        }, ForwardInputs, 1, "'x'"),
        ["forward_inputs_x_wrong_size"] = new((d, _) =>
        {
            using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
            var s = io["x"].Shape.ToArray();
            s[2] += 2;
            s[3] += 2;
            return NpzFiles.Write(d, "xsize.npz", ("x", DType.Float32, s, new byte[s.Aggregate(4L, (a, b) => a * b)]), NpzFiles.As("t", io["t"]), NpzFiles.As("y", io["y"]));
        }, ForwardInputs, 1, "'x'"),
        ["forward_inputs_t_wrong_length"] = new((d, _) =>
        {
            using var io = NpzArchive.Open(Fixtures.Path("dit", "dit_tiny_io.npz"));
            long n = io["t"].ElementCount + 3;
            return NpzFiles.Write(d, "tlen.npz", NpzFiles.As("x", io["x"]), ("t", DType.Int64, [n], new byte[n * 8]), NpzFiles.As("y", io["y"]));
        }, ForwardInputs, 1, "'t'"),
        ["forward_inputs_truncated"] = new((d, _) => { var z = GoodNpz(); return Write(d, "trunc_in.npz", z[..(z.Length - 30)]); }, ForwardInputs, 1),
        ["evaluate_ref_truncated"] = new((d, _) => { var z = GoodNpz(); return Write(d, "ref.npz", z[..(z.Length / 3)]); }, EvaluateRef, 1),
        ["evaluate_ref_huge_shape"] = new((d, _) => Write(d, "ref_huge.npz", Zip(false, ("arr_0.npy", Npy("{'descr': '|u1', 'fortran_order': False, 'shape': (100000000, 256, 256, 3), }", new byte[16])))), EvaluateRef, 1, "arr_0"),

        // ---- torch checkpoints ----
        ["pt_zip_global_os_system"] = new((d, m) => Write(d, "evil.pt", ZipCheckpoint(EvilPickle("os", "system", m))), Inspect, 1, "os.system"),
        ["pt_zip_stack_global_builtins_eval"] = new((d, m) => Write(d, "eval.pt", ZipCheckpoint(EvilStackGlobal("builtins", "eval", $"__import__('os').system('touch {m}')"), "weird")), ForwardCheckpoint, 1, "builtins.eval"),
        ["pt_zip_subprocess_popen"] = new((d, m) => Write(d, "popen.pt", ZipCheckpoint(EvilPickle("subprocess", "Popen", m))), Sample, 1, "subprocess.Popen"),
        ["pt_legacy_posix_system"] = new((d, m) => Write(d, "legacy_evil.pt", [.. CheckpointFiles.LegacyPrefix(), .. EvilPickle("posix", "system", m)]), Inspect, 1, "posix.system"),
        ["pt_legacy_builtins_exec"] = new((d, m) => Write(d, "legacy_exec.pt", [.. CheckpointFiles.LegacyPrefix(), .. EvilStackGlobal("builtins", "exec", $"import os; os.system('touch {m}')")]), ForwardCheckpoint, 1, "builtins.exec"),
        ["pt_zip_getattr_gadget"] = new((d, m) => Write(d, "getattr.pt", ZipCheckpoint(new PickleBuilder().Proto(2)
            .Global("builtins", "getattr").Global("torch._utils", "_rebuild_tensor_v2").Str("__globals__").Tuple2().Reduce().Stop().ToArray())), Inspect, 1, "builtins.getattr"),
        ["pt_zip_zero_stride_huge_view"] = new((d, _) => Write(d, "zero_stride.pt", ViewCheckpoint("blocks.0.w", 4, 0, [100_000, 100_000], [0, 0])), Inspect, 1, "blocks.0.w"),
        ["pt_zip_zero_stride_huge_view_forward"] = new((d, _) => Write(d, "zero_stride_fw.pt", ViewCheckpoint("pos_embed", 4, 0, [100_000, 100_000], [0, 0])), ForwardCheckpoint, 1, "pos_embed"),
        ["pt_zip_overlapping_strides"] = new((d, _) => Write(d, "overlap.pt", ViewCheckpoint("w", 200_000, 0, [100_000, 100_000], [1, 1])), InspectJson, 1, "'w'"),
        ["pt_zip_view_past_storage"] = new((d, _) => Write(d, "past.pt", ViewCheckpoint("w", 4, 2, [3], [1])), Inspect, 1, "storage '0'"),
        ["pt_zip_negative_stride"] = new((d, _) => Write(d, "negstride.pt", ViewCheckpoint("w", 4, 3, [4], [-1])), Inspect, 1, "storage '0'"),
        ["pt_zip_storage_record_short"] = new((d, _) => Write(d, "storage_short.pt", ViewCheckpoint("w", 1000, 0, [1000], [1], storageBytes: 40)), Sample, 1, "storage '0'"),
        ["pt_zip_storage_record_missing"] = new((d, _) =>
        {
            var members = CheckpointFiles.Zip(("archive/data.pkl", Tensor(new PickleBuilder().Proto(2).EmptyDict().Str("w"), "0", 4, 0, [4], [1]).Op((byte)'s').Stop().ToArray()),
                ("archive/version", "3\n"u8.ToArray()));
            return Write(d, "no_storage.pt", members);
        }, Inspect, 1, "storage '0'"),
        ["pt_zip_two_data_pkl"] = new((d, m) => Write(d, "two.pt", CheckpointFiles.Zip(("a/data.pkl", EvilPickle("os", "system", m)), ("b/data.pkl", EvilPickle("os", "system", m)))), Inspect, 1, "data.pkl"),
        ["pt_zip_compressed_pickle"] = new((d, m) => Write(d, "deflated.pt", Zip(true, ("archive/data.pkl", EvilPickle("os", "system", m)), ("archive/version", "3\n"u8.ToArray()))), Inspect, 1, "data.pkl"),
        ["pt_pickle_without_stop"] = new((d, _) => Write(d, "nostop.pt", ZipCheckpoint(new PickleBuilder().Proto(2).EmptyDict().Str("w").Int(5).ToArray())), Inspect, 1),
        ["pt_pickle_memo_get_unknown"] = new((d, _) => Write(d, "memo.pt", ZipCheckpoint(new PickleBuilder().Proto(2).Op((byte)'h').Raw(7).Stop().ToArray())), Inspect, 1),
        ["pt_legacy_truncated"] = new((d, _) => { var b = File.ReadAllBytes(Fixtures.Path("checkpoints", "checkpoint_legacy.pt")); return Write(d, "legacy_trunc.pt", b[..(b.Length / 2)]); }, Sample, 1),
        ["pt_legacy_bad_magic"] = new((d, _) => Write(d, "legacy_magic.pt", [.. Patch(CheckpointFiles.LegacyPrefix(), b => b[5] ^= 1), .. new PickleBuilder().Proto(2).EmptyDict().Stop().ToArray()]), Inspect, 1, "magic"),
        ["pt_one_tensor_referenced_many_times"] = new((d, _) => Write(d, "repeated.pt", RepeatedTensorCheckpoint(400)), InspectJson, 1, "'w/4'"),
        ["pt_pickle_string_length_past_end"] = new((d, _) => Write(d, "strlen.pt", ZipCheckpoint(new PickleBuilder().Proto(2).Op((byte)'X').Raw(0xf0, 0xff, 0xff, 0x7f).Raw("abc"u8.ToArray()).Stop().ToArray())), Inspect, 1),
        ["pt_pickle_huge_memo_index"] = new((d, _) => Write(d, "memoget.pt", ZipCheckpoint(new PickleBuilder().Proto(2).EmptyDict().Op((byte)'r').Raw(0xff, 0xff, 0xff, 0x7f)
            .Op((byte)'j').Raw(0xfe, 0xff, 0xff, 0x7f).Stop().ToArray())), Inspect, 1),
        ["pt_pickle_deep_nesting"] = new((d, _) =>
        {
            var p = new PickleBuilder().Proto(2).EmptyDict().Str("w");
            for (int i = 0; i < 20000; i++) p.Op((byte)']');
            for (int i = 1; i < 20000; i++) p.Op((byte)'a');
            return Write(d, "deep.pt", ZipCheckpoint(p.Op((byte)'s').Stop().ToArray()));
        }, Inspect, 1, "nested"),
        ["pt_zip_storage_key_traversal"] = new((d, _) => Write(d, "traversal.pt", CheckpointFiles.Zip(
            ("archive/data.pkl", Tensor(new PickleBuilder().Proto(2).EmptyDict().Str("w"), "../../../etc/passwd", 4, 0, [4], [1]).Op((byte)'s').Stop().ToArray()),
            ("archive/version", "3\n"u8.ToArray()))), Inspect, 1, "storage key"),
        ["pt_zip_unknown_storage_type"] = new((d, _) => Write(d, "complex.pt", CheckpointFiles.Zip(
            ("archive/data.pkl", Tensor(new PickleBuilder().Proto(2).EmptyDict().Str("w"), "0", 4, 0, [4], [1], "ComplexFloatStorage").Op((byte)'s').Stop().ToArray()),
            ("archive/data/0", new byte[32]), ("archive/version", "3\n"u8.ToArray()))), Inspect, 1, "ComplexFloatStorage"),
        ["pt_zip_negative_storage_size"] = new((d, _) => Write(d, "negnumel.pt", ViewCheckpoint("w", -1, 0, [1], [1], storageBytes: 4)), Inspect, 1, "storage '0'"),
        ["pt_key_with_control_characters"] = new((d, _) => Write(d, "ansi.pt", ViewCheckpoint($"evil{Esc}[2Jkey", 4, 0, [100_000, 100_000], [0, 0])), Inspect, 1, "evil\\u001b[2Jkey"),
        ["pt_state_dict_lacks_keys"] = new((d, _) => Write(d, "lacking.pt", ViewCheckpoint($"odd{Esc}]0;title\u0007key", 4, 0, [4], [1])), ForwardCheckpoint, 1, "x_embedder"),

        // ---- safetensors ----
        ["st_header_length_past_end"] = new((d, _) => Write(d, "hlen.safetensors", Patch(Safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), b => b[0] = 0xf0)), Inspect, 1),
        ["st_overlapping_offsets"] = new((d, _) => Write(d, "overlap.safetensors", Safetensors(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)), Inspect, 1, "'a'", "'b'"),
        ["st_bad_dtype"] = new((d, _) => Write(d, "dtype.safetensors", Safetensors("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16)), ForwardVae, 1, "'w'", "F128"),
        ["st_negative_shape"] = new((d, _) => Write(d, "negative.safetensors", Safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4)), Inspect, 1, "'w'"),
        ["st_huge_shape"] = new((d, _) => Write(d, "huge.safetensors", Safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4)), InspectJson, 1, "'w'"),
        ["st_offsets_past_data"] = new((d, _) => Write(d, "past.safetensors", Safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8)), ForwardVae, 1, "'w'"),
        ["st_header_not_json"] = new((d, _) => Write(d, "notjson.safetensors", Safetensors("{\"w\": [unterminated", 0)), Inspect, 1),
        ["st_control_characters_in_key"] = new((d, _) => Write(d, "ansi.safetensors", Safetensors("{\"evil\\u001b[2Jkey\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4)), Inspect, 1, "evil\\u001b[2Jkey"),

        ["st_duplicate_key"] = new((d, _) => Write(d, "dup.safetensors", Safetensors(
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)), Inspect, 1, "'w'"),
        ["st_deeply_nested_header"] = new((d, _) => Write(d, "deep.safetensors", Safetensors(new string('[', 5000) + new string(']', 5000), 0)), Inspect, 1),
        ["st_metadata_not_strings"] = new((d, _) => Write(d, "meta.safetensors", Safetensors("{\"__metadata__\":{\"format\":7}}", 0)), Inspect, 1, "format"),
        ["forward_vae_latents_wrong_dtype"] = new((d, _) => NpzFiles.Write(d, "zint.npz", ("z", DType.Int64, [1L, 4, 4, 4], new byte[64 * 8])),
            (f, o) => ["forward", "--net", "vae", "--checkpoint", Fixtures.Path("vae", "vae_tiny"), "--inputs", f, "-o", Path.Combine(o, "o.npz")], 1, "'z'", "int64"),

        // ---- run specs ----
        ["spec_not_json"] = new((d, _) => WriteText(d, "notjson.json", "{\"name\": \"x\", "), Run, 1),
        ["spec_missing_checkpoint"] = new((d, _) => WriteText(d, "nockpt.json", GoodSpecText(d).Replace("\"checkpoint\"", "\"checkpoint_\"")), Run, 1, "checkpoint"),
        ["spec_wrong_type"] = new((d, _) => WriteText(d, "type.json", GoodSpecText(d).Replace("\"num_samples\": 4", "\"num_samples\": \"four\"")), Run, 1, "num_samples"),
        ["spec_duplicate_key"] = new((d, _) => WriteText(d, "dup.json", GoodSpecText(d, ", \"seed\": 6")), Run, 1, "seed"),
        ["spec_huge_number"] = new((d, _) => WriteText(d, "huge.json", GoodSpecText(d).Replace("\"num_samples\": 4", "\"num_samples\": 1e300")), Run, 1, "num_samples"),
        ["spec_negative_samples"] = new((d, _) => WriteText(d, "negative.json", GoodSpecText(d).Replace("\"num_samples\": 4", "\"num_samples\": -4")), Run, 1, "num_samples"),
        ["spec_checkpoint_is_evil"] = new((d, m) =>
        {
            var ckpt = Write(d, "evil_spec.pt", ZipCheckpoint(EvilPickle("os", "system", m)));
            return WriteText(d, "evilckpt.json", GoodSpecText(d).Replace(Fixtures.Path("dit", "dit_tiny.pt").Replace("\\", "/"), ckpt.Replace("\\", "/")));
        }, Run, 1, "os.system") { Culprit = "evil_spec.pt" },

        // ---- ledger ----
        ["ledger_garbage_sqlite"] = new((d, _) =>
        {
            Directory.CreateDirectory(Path.Combine(d, "out"));
            File.WriteAllBytes(Path.Combine(d, "ledger.sqlite"), Encoding.ASCII.GetBytes(new string('x', 4096)));
            return WriteText(d, "ledger_spec.json", GoodSpecText(d));
        }, (f, o) => [.. Run(f, o), "--ledger", "sqlite:" + Path.Combine(Path.GetDirectoryName(f)!, "ledger.sqlite")], 3) { Culprit = "ledger.sqlite" },
    };

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Cases.Keys) data.Add(name);
        return data;
    }

    [Fact]
    public void TheCorpusHasAtLeastFortyRows() => Assert.True(Cases.Count >= 40, $"{Cases.Count} rows");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BadFileIsRefusedCleanly(string name)
    {
        var c = Cases[name];
        string work = Path.Combine(_dir.FullName, "in");
        string outDir = Path.Combine(_dir.FullName, "output");
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(outDir);
        string marker = Path.Combine(_dir.FullName, "pwned");
        string file = c.Make(work, marker);
        var before = Directory.GetFiles(work, "*", SearchOption.AllDirectories).ToHashSet();

        var started = DateTime.UtcNow;
        var r = CliProcess.Run(c.Args(file, outDir));
        var took = DateTime.UtcNow - started;

        Assert.True(r.ExitCode == c.Exit, $"{name}: exit {r.ExitCode}, expected {c.Exit}; stderr: {r.Stderr}");
        string err = r.Stderr;
        Assert.Contains(c.Culprit is { } culprit ? Path.Combine(work, culprit) : file, err);
        foreach (var n in c.Names) Assert.True(err.Contains(n, StringComparison.Ordinal), $"{name}: message does not name {n}: {err}");
        Assert.DoesNotContain("internal error", err);
        Assert.DoesNotContain("   at ", err);
        Assert.False(err.Contains('\u001b') || r.Stdout.Contains('\u001b') || err.Contains('\u0007'), $"{name}: a raw control character reached the terminal");
        Assert.False(File.Exists(marker), $"{name}: the file ran code (marker created)");
        Assert.Empty(Directory.GetFileSystemEntries(outDir));
        var leftovers = Directory.GetFiles(work, "*", SearchOption.AllDirectories).Where(f => !before.Contains(f))
            .Where(f => Path.GetFileName(f).Contains(".tmp-", StringComparison.Ordinal) || f.EndsWith(".npz", StringComparison.Ordinal)).ToList();
        Assert.True(leftovers.Count == 0, $"{name}: left {string.Join(", ", leftovers)}");
        Assert.True(took < TimeSpan.FromSeconds(60), $"{name}: took {took.TotalSeconds:F1} s");
    }
}
