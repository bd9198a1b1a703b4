using DyDiT.Eval.Engine.Formats;
using Xunit;

namespace DyDiT.Eval.Engine.Tests;

public sealed class PrintableTextTests
{
    [Theory]
    [InlineData("blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.weight")]
    [InlineData("évaluation/ключ/鍵", "évaluation/ключ/鍵")]
    [InlineData("a\\b", "a\\b")]
    [InlineData("evil\u001b[2Jname", "evil\\u001b[2Jname")]
    [InlineData("title\u001b]0;x\u0007", "title\\u001b]0;x\\u0007")]
    [InlineData("line\nforged", "line\\u000aforged")]
    [InlineData("cr\rover", "cr\\u000dover")]
    [InlineData("del\u007f c1\u009b", "del\\u007f c1\\u009b")]
    [InlineData("bidi\u202egnp.exe", "bidi\\u202egnp.exe")]
    [InlineData("nul\0", "nul\\u0000")]
    public void UnsafeCharactersBecomeVisibleEscapes(string raw, string shown) => Assert.Equal(shown, PrintableText.Escape(raw));

    [Fact]
    public void EscapingTwiceChangesNothing()
    {
        string once = PrintableText.Escape("x\u001b[31m\u0007\ny");
        Assert.Equal(once, PrintableText.Escape(once));
        Assert.Equal(once, PrintableText.EscapeMessage(once));
    }

    [Fact]
    public void MessagesKeepTheirLineFeedsButNotOtherControls()
    {
        Assert.Equal("first\nsecond\\u001b[2J", PrintableText.EscapeMessage("first\nsecond\u001b[2J"));
    }

    [Fact]
    public void TensorFileExceptionsShowNamesEscaped()
    {
        var e = new TensorFileException("/tmp/a\u001b.npz", "member 'evil\u001b[2J' is truncated");
        Assert.Equal("/tmp/a\\u001b.npz: member 'evil\\u001b[2J' is truncated", e.Message);
        Assert.Equal("/tmp/a\u001b.npz", e.FilePath); // the path itself is kept for callers that open it
        Assert.DoesNotContain('\u001b', e.Fault);
    }
}
