namespace DyDiT.Eval.Evaluation.Inception;

/// <summary>How images become the FID Inception network's 299×299×3 input in [−1, 1].</summary>
public enum PreprocessMode
{
    /// <summary>ADM / TF graph: float32 0..255 → TF1 legacy bilinear resize to 299 → <c>(x − 128)/128</c> ([−1, 0.9921875]).</summary>
    Adm,

    /// <summary>pytorch-fid: <c>x/255</c> → PyTorch half-pixel bilinear resize to 299 → <c>2x − 1</c> ([−1, 1]).</summary>
    PytorchFid,
}
