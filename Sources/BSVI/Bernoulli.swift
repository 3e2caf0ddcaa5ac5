import CKernels

/// The Bernoulli likelihood of binary pixels given decoder logits a:
/// log p(x|z) = Σ_d [x_d a_d − softplus(a_d)], and its gradient ∂/∂a_d = x_d − sigmoid(a_d).
/// The kernels (CKernels' elementwise.inc) compute e = e^−|a| once per pixel: softplus(a) =
/// max(a,0) + log1p(e) and sigmoid(a) = (a ≥ 0 ? 1 : e) / (1 + e), finite for every finite logit.
/// Every pass takes a row's Σ_d log1p(e_d) as log Π_d (1 + e_d), one logarithm per lane and 64
/// vectors (the rounding error is below 1e-6 nats per pixel), with the same operations in the same
/// order: training and evaluation give a row the same log p(x|z), to the bit.
public enum Bernoulli {
    /// log p(x | logits) for `rows` rows of logits (row r against x row r mod x.rows), for
    /// evaluation (no gradient).
    public static func logLikelihood(x: Matrix, logits: Matrix, into out: UnsafeMutablePointer<Float>) {
        precondition(x.cols == logits.cols && x.rows > 0, "likelihood shapes")
        bsvi_bernoulli_log_likelihood(Int32(logits.rows), Int32(logits.cols), x.base, Int32(x.cols), Int32(x.rows),
                                      logits.base, Int32(logits.cols), out)
    }

    /// log p(x|a) per row for the logits a = hidden · kernel + bias of a linear output layer,
    /// computed without storing them (bsvi_sgemm_nn_bernoulli_log_likelihood: kernel paths only;
    /// the same bits as `multiply` then `logLikelihood`). Counted as the layer's product.
    public static func outputLayerLogLikelihood(hidden: Matrix, kernel: Matrix, bias: UnsafePointer<Float>, x: Matrix,
                                                into out: UnsafeMutablePointer<Float>) {
        precondition(hidden.cols == kernel.rows && x.cols == kernel.cols && x.rows > 0, "likelihood shapes")
        precondition(KernelPath.activeHasProducts, "the \(KernelPath.active) path has no product kernels")
        usefulProduct(.nnLikelihood, m: hidden.rows, k: hidden.cols, n: kernel.cols) {
            bsvi_sgemm_nn_bernoulli_log_likelihood(Int32(hidden.rows), Int32(hidden.cols), Int32(kernel.cols), hidden.base,
                                                   Int32(hidden.cols), kernel.base, Int32(kernel.cols), bias, x.base,
                                                   Int32(x.cols), Int32(x.rows), out)
        }
    }

    /// One fused pass: log p(x|a) per row into `out`, and the logits overwritten with x − sigmoid(a),
    /// the back-propagated error of the log-likelihood (the output layer is linear). Without
    /// `out`, the error alone (the same bits, about half the work).
    public static func logLikelihoodAndError(x: Matrix, logitsToError a: Matrix, into out: UnsafeMutablePointer<Float>?) {
        precondition(x.cols == a.cols && x.rows > 0, "likelihood shapes")
        bsvi_bernoulli_score(Int32(a.rows), Int32(a.cols), x.base, Int32(x.cols), Int32(x.rows), a.base, Int32(a.cols), out)
    }
}
