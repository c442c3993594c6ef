"""dlib's face descriptor network, read from dlib's own model file and run in numpy (float32 matmuls).

Why: the prebuilt dlib wheel has no BLAS (`dlib.DLIB_USE_BLAS` is False), so its ResNet spends 59-66 ms
on a face here; numpy's OpenBLAS runs the same network with the same weights in about 8 ms of CPU
(bench/face_network.py prints both). The numbers are dlib's to within float32 rounding (at most 3.4e-7
per element; the tests compare them with dlib's encoder on the same chips), so the distances measured
on dlib's descriptors (characters.vision.identity) still hold.

The network is `anet_type` of dlib's examples/dnn_face_recognition_ex.cpp, the file
dlib_face_recognition_resnet_model_v1.dat of `face_recognition_models`. Its format, followed from
dlib's sources (davisking/dlib):
  dlib/serialize.h       ints: a control byte (byte count, 0x80 when negative), then little-endian bytes;
                         floats: mantissa (int64) then exponent (int16) as ints; bools: '1' or '0';
                         strings: size, then the bytes
  dlib/cuda/tensor.h     tensors, version 2: num_samples, k, nr, nc, then raw little-endian float32;
                         alias tensors (a view into a layer's params), version 1: the four sizes
  dlib/dnn/core.h        add_loss_layer: version, loss details, the net; add_layer: version, the layers
                         below, its details, then training state; add_tag_layer, add_skip_layer: version,
                         the layers below; the add_layer right above the input holds the input layer
  dlib/dnn/layers.h      con_, affine_ (batch norm at inference), relu_, add_prev_, avg_pool_,
                         max_pool_, fc_;  dlib/dnn/input.h input_rgb_image_sized;  dlib/dnn/loss.h
                         loss_metric_
and the arithmetic from dlib/dnn/layers.h and dlib/cuda/cpu_dlib.cpp: the input is (pixel - mean) / 256;
convolutions are correlations with zero padding size/2 at stride 1 and none at stride 2; a pooling
window is clipped to the image (an average counts only pixels inside); add_prev adds two tensors of
different sizes by padding the smaller with zeros at the end (bottom, right, last channels).

Reading is strict: a version string, a flag or a shape the network does not have is a ModelFileError
naming what was found, so another model file fails loudly instead of giving other numbers.

Activations are channels-last (rows, columns, channels). A convolution is one matmul of the image's
patches (im2col through stride tricks) by a weight matrix laid out for it once at load time, with the
affine layer (batch norm at inference) folded into its weights and bias. Weights are read once per
process (`face_network()`); `descriptor()` keeps no state between calls, so threads may share it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128


class ModelFileError(ValueError):
    """The file is not dlib's face descriptor network as this module knows it (or is damaged)."""


# --- The network, top (the loss) to bottom (the input), as dlib's templates nest it -------------------


@dataclass(frozen=True)
class _Spec:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    filters: int = 0  # con: number of filters; fc: outputs
    size: int = 0  # con, pools: window side (0: the whole image)
    stride: int = 1
    tag: int = 0  # tag, skip, add_prev: the tag id


def _block(filters: int, stride: int) -> list[_Spec]:
    # block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        _Spec("affine"),
        _Spec("con", filters, 3, 1),
        _Spec("relu"),
        _Spec("affine"),
        _Spec("con", filters, 3, stride),
    ]


def _ares(filters: int) -> list[_Spec]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_Spec("relu"), _Spec("add_prev", tag=1), *_block(filters, 1), _Spec("tag", tag=1)]


def _ares_down(filters: int) -> list[_Spec]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        _Spec("relu"),
        _Spec("add_prev", tag=2),
        _Spec("avg_pool", size=2, stride=2),
        _Spec("skip", tag=1),
        _Spec("tag", tag=2),
        *_block(filters, 2),
        _Spec("tag", tag=1),
    ]


# Between loss_metric and input_rgb_image_sized<150>; the last con is the one above the input.
_NETWORK: tuple[_Spec, ...] = (
    _Spec("fc", DESCRIPTOR_SIZE),
    _Spec("avg_pool", size=0, stride=1),  # avg_pool_everything
    *_ares_down(256),  # alevel0
    *_ares(256),
    *_ares(256),
    *_ares_down(256),  # alevel1
    *_ares(128),
    *_ares(128),
    *_ares_down(128),  # alevel2
    *_ares(64),
    *_ares(64),
    *_ares(64),
    *_ares_down(64),  # alevel3
    *_ares(32),
    *_ares(32),
    *_ares(32),  # alevel4
    _Spec("max_pool", size=3, stride=2),
    _Spec("relu"),
    _Spec("affine"),
    _Spec("con", 32, 7, 2),
)


# --- dlib's serialization ------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._name = name
        self.pos = 0

    def error(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self._name}: {what} (at byte {self.pos}); not dlib's face descriptor network v1")

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self._data):
            raise self.error(f"the file ends inside {what}")
        chunk = self._data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str, size: int = 8, signed: bool = True) -> int:
        control = self.take(1, what)[0]
        count = control & (0x0F if signed else 0x8F)
        if count == 0 or count > size:
            raise self.error(f"{what}: an integer of {count} bytes where at most {size} fit")
        value = int.from_bytes(self.take(count, what), "little")
        return -value if signed and control & 0x80 else value

    def number(self, what: str) -> float:
        if self._data[self.pos : self.pos + 1] and self._data[self.pos] & 0x70:
            raise self.error(f"{what}: a float in dlib's old text format")
        mantissa = self.integer(what, 8)
        exponent = self.integer(what, 2)
        if exponent >= 32000:  # float_details' inf, -inf and nan
            raise self.error(f"{what}: not a finite number")
        return math.ldexp(mantissa, exponent)

    def flag(self, what: str) -> bool:
        value = self.take(1, what)
        if value not in (b"0", b"1"):
            raise self.error(f"{what}: {value!r} where a bool ('0' or '1') was expected")
        return value == b"1"

    def string(self, what: str) -> str:
        size = self.integer(what, 8, signed=False)
        if size > 64:
            raise self.error(f"{what}: a string of {size} bytes")
        return self.take(size, what).decode("latin-1")

    def version(self, what: str, accepted: tuple[str, ...]) -> str:
        found = self.string(what)
        if found not in accepted:
            raise self.error(f"{what}: version {found!r}, expected {' or '.join(map(repr, accepted))}")
        return found

    def int_version(self, what: str, accepted: tuple[int, ...]) -> int:
        found = self.integer(what, 4)
        if found not in accepted:
            raise self.error(f"{what}: version {found}, expected {' or '.join(map(str, accepted))}")
        return found

    def shape(self, what: str) -> tuple[int, int, int, int]:
        sizes = (self.integer(what), self.integer(what), self.integer(what), self.integer(what))
        if min(sizes) < 0:
            raise self.error(f"{what}: negative size {sizes}")
        return sizes

    def tensor(self, what: str) -> np.ndarray:
        self.int_version(what, (2,))
        shape = self.shape(what)
        count = shape[0] * shape[1] * shape[2] * shape[3]
        raw = self.take(4 * count, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        self.int_version(what, (1,))
        return self.shape(what)

    def expect(self, what: str, found: object, expected: object) -> None:
        if found != expected:
            raise self.error(f"{what}: {found!r}, expected {expected!r}")


@dataclass
class _Conv:
    weights: np.ndarray  # (side * side * channels_in, filters): a patch row times this is the output
    bias: np.ndarray  # (filters,)
    side: int
    stride: int
    padding: int
    channels_in: int
    relu: bool = False  # the relu above it, done in place


@dataclass
class _Affine:
    gamma: np.ndarray
    beta: np.ndarray


def _read_window(r: _Reader, what: str, spec: _Spec) -> int:
    """A convolution's or pooling's window: rows, columns, strides and dlib's default padding (size / 2 at
    stride 1, none otherwise), in the order both serialize them; returns the padding."""
    r.expect(what + " rows", r.integer(what), spec.size)
    r.expect(what + " columns", r.integer(what), spec.size)
    r.expect(what + " stride_y", r.integer(what, 4), spec.stride)
    r.expect(what + " stride_x", r.integer(what, 4), spec.stride)
    padding = 0 if spec.stride != 1 else spec.size // 2
    r.expect(what + " padding_y", r.integer(what, 4), padding)
    r.expect(what + " padding_x", r.integer(what, 4), padding)
    return padding


def _read_con(r: _Reader, spec: _Spec) -> _Conv:
    what = f"con_ ({spec.filters} filters {spec.size}x{spec.size} stride {spec.stride})"
    version = r.version(what, ("con_4", "con_5", "con_6"))
    params = r.tensor(what + " params")
    r.expect(what + " num_filters", r.integer(what), spec.filters)
    padding = _read_window(r, what, spec)
    filters = r.alias(what + " filters")
    biases = r.alias(what + " biases")
    for multiplier in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.number(f"{what} {multiplier}_multiplier")
    use_bias = r.flag(what + " use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.expect(what + " use_relu", r.flag(what + " use_relu"), False)
    count, channels_in, rows, columns = filters
    if count != spec.filters or rows != spec.size or columns != spec.size:
        raise r.error(f"{what}: filters of shape {filters}")
    filter_size = count * channels_in * rows * columns
    r.expect(what + " biases", biases, (1, spec.filters, 1, 1) if use_bias else (0, 0, 0, 0))
    r.expect(what + " params size", params.size, filter_size + (spec.filters if use_bias else 0))
    flat = params.reshape(-1)
    # dlib's filters are (filters, channels, rows, columns); a channels-last patch is (rows, columns, channels).
    kernel = flat[:filter_size].reshape(filters).transpose(2, 3, 1, 0)
    bias = flat[filter_size:].copy() if use_bias else np.zeros(spec.filters, np.float32)
    return _Conv(
        weights=np.ascontiguousarray(kernel.reshape(-1, count)),
        bias=bias,
        side=spec.size,
        stride=spec.stride,
        padding=padding,
        channels_in=channels_in,
    )


def _read_affine(r: _Reader) -> _Affine:
    what = "affine_"
    version = r.version(what, ("affine_", "affine_2"))
    params = r.tensor(what + " params").reshape(-1)
    gamma_shape = r.alias(what + " gamma")
    beta_shape = r.alias(what + " beta")
    r.expect(what + " mode (CONV_MODE)", r.integer(what + " mode", 4), 0)
    if version == "affine_2":
        r.expect(what + " disabled", r.flag(what + " disabled"), False)
    channels = gamma_shape[1]
    r.expect(what + " gamma", gamma_shape, (1, channels, 1, 1))
    r.expect(what + " beta", beta_shape, (1, channels, 1, 1))
    r.expect(what + " params size", params.size, 2 * channels)
    return _Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())


def _read_relu(r: _Reader) -> None:
    if r.version("relu_", ("relu_", "relu_2")) == "relu_2":
        r.expect("relu_ disabled", r.flag("relu_ disabled"), False)


def _read_pool(r: _Reader, spec: _Spec) -> None:
    what = f"{spec.kind}_ ({spec.size}x{spec.size} stride {spec.stride})"
    r.version(what, (f"{spec.kind}_2",))
    _read_window(r, what, spec)


def _read_fc(r: _Reader, spec: _Spec) -> np.ndarray:
    what = f"fc_ ({spec.filters} outputs, no bias)"
    version = r.version(what, ("fc_2", "fc_3"))
    r.expect(what + " num_outputs", r.integer(what, signed=False), spec.filters)
    inputs = r.integer(what, signed=False)
    params = r.tensor(what + " params").reshape(-1)
    r.expect(what + " weights", r.alias(what + " weights"), (inputs, spec.filters, 1, 1))
    r.expect(what + " biases", r.alias(what + " biases"), (0, 0, 0, 0))
    r.expect(what + " bias_mode (FC_NO_BIAS)", r.integer(what, 4), 1)
    for multiplier in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.number(f"{what} {multiplier}_multiplier")
    if version == "fc_3":
        r.flag(what + " use_bias")  # no bias either way in FC_NO_BIAS mode
    r.expect(what + " params size", params.size, inputs * spec.filters)
    return params.reshape(inputs, spec.filters).copy()


def _read_input(r: _Reader) -> np.ndarray:
    what = "input_rgb_image_sized"
    r.version(what, (what,))
    means = np.array([r.number(what + " avg_" + c) for c in ("red", "green", "blue")], dtype=np.float32)
    r.expect(what + " rows", r.integer(what, signed=False), CHIP_SIZE)
    r.expect(what + " columns", r.integer(what, signed=False), CHIP_SIZE)
    return means


def _read_layer_state(r: _Reader, what: str, gradients: bool) -> None:
    """An add_layer's training state after its details: three flags and cached tensors (not kept)."""
    for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.flag(f"{what} {flag}")
    r.tensor(what + " x_grad")
    r.tensor(what + " cached_output")
    if gradients:
        r.tensor(what + " params_grad")


def _read_details(r: _Reader, spec: _Spec) -> object:
    if spec.kind == "con":
        return _read_con(r, spec)
    if spec.kind == "affine":
        return _read_affine(r)
    if spec.kind == "relu":
        _read_relu(r)
        return None
    if spec.kind in ("max_pool", "avg_pool"):
        _read_pool(r, spec)
        return None
    if spec.kind == "add_prev":
        r.version("add_prev_", ("add_prev_",))
        return None
    if spec.kind == "fc":
        return _read_fc(r, spec)
    raise AssertionError(spec.kind)


def read_model(path: str | Path) -> FaceNetwork:
    """The network in dlib's file at `path`; ModelFileError if it is not (all of) that network."""
    data = Path(path).read_bytes()
    r = _Reader(data, Path(path).name)
    r.int_version("add_loss_layer", (1,))
    if r.version("loss_metric_", ("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        r.number("loss_metric_ margin")
        r.number("loss_metric_ dist_thresh")
    # Each layer's version comes before the layers below it, its details after them.
    add_layer_versions: list[int] = []
    *upper, bottom = _NETWORK
    for spec in upper:
        if spec.kind in ("tag", "skip"):
            r.int_version(f"{spec.kind}{spec.tag}", (1,))
        else:
            add_layer_versions.append(r.int_version(f"add_layer ({spec.kind})", (1, 2)))
    bottom_version = r.int_version("add_layer (con over the input)", (2, 3))
    means = _read_input(r)
    details: list[object] = [_read_details(r, bottom)]
    for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.flag(f"con over the input {flag}")
    for state in ("x_grad", "cached_output", "grad_final"):
        r.tensor(f"con over the input {state}")
    if bottom_version == 3:
        r.expect("sample_expansion_factor", r.integer("sample_expansion_factor", 4, signed=False), 1)
    for spec in reversed(upper):
        if spec.kind in ("tag", "skip"):
            details.append(None)
            continue
        details.append(_read_details(r, spec))
        _read_layer_state(r, f"add_layer ({spec.kind})", gradients=add_layer_versions.pop() == 2)
    if r.pos != len(data):
        raise r.error(f"{len(data) - r.pos} bytes after the network")
    return FaceNetwork(means, list(zip(reversed(_NETWORK), details, strict=True)))


# --- The forward pass ----------------------------------------------------------------------------------


def _patches(x: np.ndarray, side: int, stride: int) -> np.ndarray:
    """im2col of a channels-last image (already padded): one row per output pixel, (rows, columns, channels)."""
    height, width, channels = x.shape
    out_h, out_w = (height - side) // stride + 1, (width - side) // stride + 1
    s0, s1, s2 = x.strides
    view = as_strided(
        x,
        shape=(out_h, out_w, side, side, channels),
        strides=(s0 * stride, s1 * stride, s0, s1, s2),
        writeable=False,
    )
    return view.reshape(out_h * out_w, side * side * channels)


def _conv(x: np.ndarray, conv: _Conv) -> np.ndarray:
    p = conv.padding
    if p:
        padded = np.zeros((x.shape[0] + 2 * p, x.shape[1] + 2 * p, x.shape[2]), np.float32)
        padded[p:-p, p:-p] = x
        x = padded
    height, width, _ = x.shape
    out_h = (height - conv.side) // conv.stride + 1
    out_w = (width - conv.side) // conv.stride + 1
    out = _patches(x, conv.side, conv.stride) @ conv.weights
    out += conv.bias
    if conv.relu:
        np.maximum(out, 0, out=out)
    return out.reshape(out_h, out_w, -1)


def _pool(x: np.ndarray, side: int, stride: int, take_max: bool) -> np.ndarray:
    height, width, _ = x.shape
    out_h, out_w = (height - side) // stride + 1, (width - side) // stride + 1
    windows = [
        x[dy : dy + stride * (out_h - 1) + 1 : stride, dx : dx + stride * (out_w - 1) + 1 : stride]
        for dy in range(side)
        for dx in range(side)
    ]
    out = windows[0].copy()
    for window in windows[1:]:
        if take_max:
            np.maximum(out, window, out=out)
        else:
            out += window
    if not take_max:
        out *= np.float32(1.0 / (side * side))
    return out


def _add_zero_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape == b.shape:
        return a + b
    shape = tuple(max(m, n) for m, n in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] = a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out


class FaceNetwork:
    """dlib_face_recognition_resnet_model_v1 as numpy arrays; `descriptor(chip)` is dlib's descriptor."""

    def __init__(self, means: np.ndarray, layers: list[tuple[_Spec, object]]) -> None:
        self._means = means
        self._steps = self._compile(layers)

    @staticmethod
    def _compile(layers: list[tuple[_Spec, object]]) -> list[tuple]:
        """Bottom-up steps, each conv with the affine above it folded in, checked for shape on the way."""
        steps: list[tuple] = []
        channels, side = 3, CHIP_SIZE
        tag_channels: dict[int, tuple[int, int]] = {}
        i = 0
        while i < len(layers):
            spec, details = layers[i]
            if isinstance(details, _Conv):
                if details.channels_in != channels:
                    raise ModelFileError(
                        f"a con_ reads {details.channels_in} channels where the layer below has {channels}"
                    )
                weights, bias = details.weights, details.bias
                above = layers[i + 1][1] if i + 1 < len(layers) else None
                if isinstance(above, _Affine):
                    if above.gamma.size != spec.filters:
                        raise ModelFileError(f"an affine_ of {above.gamma.size} channels over {spec.filters} filters")
                    weights = np.ascontiguousarray(weights * above.gamma)
                    bias = bias * above.gamma + above.beta
                    i += 1
                relu = i + 1 < len(layers) and layers[i + 1][0].kind == "relu"
                i += relu
                steps.append(("conv", replace(details, weights=weights, bias=bias.astype(np.float32), relu=relu)))
                channels = spec.filters
                side = (side + 2 * details.padding - details.side) // details.stride + 1
            elif spec.kind == "affine":
                raise ModelFileError("an affine_ that is not above a con_")
            elif spec.kind == "relu":
                steps.append(("relu",))
            elif spec.kind == "tag":
                steps.append(("tag", spec.tag))
                tag_channels[spec.tag] = (channels, side)
            elif spec.kind == "skip":
                steps.append(("skip", spec.tag))
                channels, side = tag_channels[spec.tag]
            elif spec.kind == "add_prev":
                steps.append(("add_prev", spec.tag))
                channels = max(channels, tag_channels[spec.tag][0])
                side = max(side, tag_channels[spec.tag][1])
            elif spec.kind in ("max_pool", "avg_pool"):
                window = spec.size or side
                steps.append(("pool", window, spec.stride, spec.kind == "max_pool"))
                side = (side - window) // spec.stride + 1
            elif spec.kind == "fc":
                assert isinstance(details, np.ndarray)
                if details.shape[0] != channels * side * side:
                    raise ModelFileError(f"an fc_ of {details.shape[0]} inputs over {channels}x{side}x{side}")
                steps.append(("fc", details))
            i += 1
        return steps

    def descriptor(self, chip_rgb: np.ndarray) -> np.ndarray:
        """The 128 floats (float32) of an aligned 150x150 RGB face chip (uint8), as dlib computes them."""
        if chip_rgb.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip_rgb.dtype != np.uint8:
            raise ValueError(f"a {CHIP_SIZE} px square RGB uint8 chip is needed, not {chip_rgb.shape} {chip_rgb.dtype}")
        x = (chip_rgb.astype(np.float32) - self._means) / np.float32(256.0)
        tags: dict[int, np.ndarray] = {}
        for step in self._steps:
            kind = step[0]
            if kind == "conv":
                x = _conv(x, step[1])
            elif kind == "relu":
                x = np.maximum(x, 0)
            elif kind == "tag":
                tags[step[1]] = x
            elif kind == "skip":
                x = tags[step[1]]
            elif kind == "add_prev":
                x = _add_zero_padded(x, tags[step[1]])
            elif kind == "pool":
                x = _pool(x, step[1], step[2], step[3])
            else:  # fc: dlib flattens (channels, rows, columns)
                x = x.transpose(2, 0, 1).reshape(-1) @ step[1]
        return x


# OpenBLAS's entry point by build: plain, 64-bit integers (numpy 1.x wheels), scipy-openblas (scipy, numpy 2).
_BLAS_SET_THREADS = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_",
)


def set_blas_threads(count: int) -> bool:
    """Sets the thread count of every OpenBLAS loaded in this process (numpy's, scipy's); False if none.

    Process-wide, as OPENBLAS_NUM_THREADS would be. The numbers do not depend on it, only the speed.
    """
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return False
    done = False
    for path in sorted(paths):
        library = ctypes.CDLL(path)  # already loaded: the same handle
        for name in _BLAS_SET_THREADS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(count))
                done = True
                break
    return done


_network: FaceNetwork | None = None
_network_lock = threading.Lock()


def face_network() -> FaceNetwork:
    """The process's network, read from `face_recognition_models` on first use.

    It also puts OpenBLAS on one thread: descriptors run beside the decoder and MediaPipe
    (characters.vision.identity.DescriptorThread), where OpenBLAS's second thread, spinning between
    calls, took their CPU: on bench/identity.py identity added 0.3-0.6 s of CPU with two BLAS threads,
    0.12-0.15 s with one; a descriptor alone is 8 ms on one thread, 5-6 ms on two (bench/face_network.py).
    """
    global _network
    if _network is None:
        with _network_lock:
            if _network is None:
                import face_recognition_models as model_files

                _network = read_model(model_files.face_recognition_model_location())
                set_blas_threads(1)
    return _network
