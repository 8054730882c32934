"""Train the bundled default model: a small CNN on the handwritten digits that ship with
scikit-learn (1,797 8x8 images, 10 classes), in plain numpy, and export it to ONNX with
a handful of held-out samples.

    python examples/train_digits.py            # writes vta/data/digits_cnn.onnx and digits_samples.npz

Model: conv 3x3 1->16 (pad 1), ReLU, conv 3x3 16->32 (stride 2, pad 1), ReLU, flatten,
dense 512->10, softmax. Trained with Adam on cross-entropy for 30 epochs (about 20 s on two
cores); held-out accuracy about 98%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "vta" / "data"


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = np.empty((n, c, k, k, oh, ow), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return cols.reshape(n, c * k * k, oh * ow), oh, ow


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int, stride: int, pad: int, oh: int, ow: int) -> np.ndarray:
    n, c, h, w = shape
    cols = cols.reshape(n, c, k, k, oh, ow)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), cols.dtype)
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += cols[:, :, i, j]
    return xp[:, :, pad:pad + h, pad:pad + w]


class Conv:
    def __init__(self, rng: np.random.Generator, cin: int, cout: int, k: int, stride: int, pad: int) -> None:
        self.w = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * np.sqrt(2 / (cin * k * k))
        self.b = np.zeros(cout, np.float32)
        self.k, self.stride, self.pad = k, stride, pad

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape = x.shape
        self.cols, oh, ow = im2col(x, self.k, self.stride, self.pad)
        self.oh, self.ow = oh, ow
        y = np.einsum("ok,nkp->nop", self.w.reshape(self.w.shape[0], -1), self.cols) + self.b[None, :, None]
        return y.reshape(x.shape[0], -1, oh, ow)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n = dy.shape[0]
        d = dy.reshape(n, dy.shape[1], -1)
        self.dw = np.einsum("nop,nkp->ok", d, self.cols).reshape(self.w.shape)
        self.db = d.sum(axis=(0, 2))
        dcols = np.einsum("ok,nop->nkp", self.w.reshape(self.w.shape[0], -1), d)
        return col2im(dcols, self.x_shape, self.k, self.stride, self.pad, self.oh, self.ow)


def train(seed: int = 0, epochs: int = 30) -> tuple[list[np.ndarray], float, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    test, tr = order[:297], order[297:]
    c1, c2 = Conv(rng, 1, 16, 3, 1, 1), Conv(rng, 16, 32, 3, 2, 1)
    fw = (rng.standard_normal((10, 512)) * np.sqrt(1 / 512)).astype(np.float32)
    fb = np.zeros(10, np.float32)
    params = [c1.w, c1.b, c2.w, c2.b, fw, fb]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        for i in range(0, len(tr), 64):
            idx = tr[rng.permutation(len(tr))[:64]]
            xb, yb = x[idx], y[idx]
            h1 = c1.forward(xb)
            a1 = np.maximum(h1, 0)
            h2 = c2.forward(a1)
            a2 = np.maximum(h2, 0)
            flat = a2.reshape(len(xb), -1)
            logits = flat @ fw.T + fb
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            dl = p.copy()
            dl[np.arange(len(xb)), yb] -= 1
            dl /= len(xb)
            dfw, dfb = dl.T @ flat, dl.sum(0)
            da2 = (dl @ fw).reshape(a2.shape) * (h2 > 0)
            da1 = c2.backward(da2) * (h1 > 0)
            c1.backward(da1)
            grads = [c1.dw, c1.db, c2.dw, c2.db, dfw, dfb]
            step += 1
            for j, (pp, g) in enumerate(zip(params, grads)):  # Adam
                m[j] = 0.9 * m[j] + 0.1 * g
                v[j] = 0.999 * v[j] + 0.001 * g * g
                pp -= 0.003 * (m[j] / (1 - 0.9 ** step)) / (np.sqrt(v[j] / (1 - 0.999 ** step)) + 1e-8)
    h = np.maximum(c2.forward(np.maximum(c1.forward(x[test]), 0)), 0).reshape(len(test), -1) @ fw.T + fb
    acc = float((h.argmax(1) == y[test]).mean())
    return params, acc, x[test], y[test]


def export(params: list[np.ndarray], path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    names = ["conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc_w", "fc_b"]
    nodes = [
        helper.make_node("Conv", ["image", "conv1_w", "conv1_b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    g = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])],
                          [numpy_helper.from_array(p.astype(np.float32), n) for p, n in zip(params, names)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="vta examples/train_digits.py")
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    params, acc, xt, yt = train()
    OUT.mkdir(parents=True, exist_ok=True)
    export(params, OUT / "digits_cnn.onnx")
    np.savez_compressed(OUT / "digits_samples.npz", image=xt[:64], label=yt[:64], calibration=xt[64:128])
    print(f"held-out accuracy {acc:.3f} on {len(yt)} images; wrote {OUT / 'digits_cnn.onnx'} and samples")


if __name__ == "__main__":
    main()
