"""dlib's face descriptor network: dlib's own build against the numpy one (characters.vision.face_network).

    .venv/bin/python bench/face_network.py [--repeat N] [--out bench/out]

Aligns the faces of scikit-image's astronaut and cameraman photos and variants (mirrored, darker,
scaled) as characters.vision.identity does (MediaPipe box, dlib's 5 landmarks, dlib.get_face_chip), then,
in one run, per descriptor of those chips (medians of --repeat passes over all of them):
  dlib                    dlib.face_recognition_model_v1.compute_face_descriptor(chip), the reference
  numpy, N BLAS threads   FaceNetwork.descriptor(chip) with OpenBLAS's default thread count
  numpy, 1 BLAS thread    the same on one OpenBLAS thread, as face_network() sets it (the extraction runs
                          descriptors in a thread beside the decoder and MediaPipe, so CPU counts)
  ..., 2 at once          two Python threads computing descriptors at the same time
wall and process CPU milliseconds (all threads) each, dlib's time over numpy's, and the largest
difference per element and in distance between the numpy descriptors and dlib's. Writes a contact sheet
of the chips with their differences (bench/out/face_network_chips.png).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from characters.vision import face_network  # noqa: E402


def aligned_chips() -> dict[str, np.ndarray]:
    import cv2
    import dlib

    from characters.vision import identity
    from characters.vision.faces import detect_faces, detectors
    from demo.clips import photo

    astronaut, cameraman = photo("astronaut"), photo("camera")
    variants = {
        "astronaut": astronaut,
        "cameraman": cameraman,
        "astronaut mirrored": np.ascontiguousarray(astronaut[:, ::-1]),
        "cameraman mirrored": np.ascontiguousarray(cameraman[:, ::-1]),
        "astronaut darker": (astronaut * 0.45).astype(np.uint8),
        "cameraman scaled 0.6": cv2.resize(cameraman, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA),
        "astronaut scaled 1.7": cv2.resize(astronaut, None, fx=1.7, fy=1.7, interpolation=cv2.INTER_LINEAR),
    }
    models = identity.face_models()
    chips = {}
    for name, image in variants.items():
        h, w = image.shape[:2]
        face = max(detect_faces(detectors(), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), key=lambda f: f.prominence)
        crop, box = identity.face_chip(image, (face.box.x * w, face.box.y * h, face.box.w * w, face.box.h * h))
        rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        shape = models.landmarks(rgb, dlib.rectangle(*box))
        chips[name] = dlib.get_face_chip(rgb, shape, size=face_network.CHIP_SIZE, padding=0.25)
    return chips


def per_descriptor(compute, chips: list[np.ndarray], repeat: int) -> dict[str, float]:
    """Median wall and CPU ms per descriptor over `repeat` passes (after one warm-up call)."""
    compute(chips[0])
    wall, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        for chip in chips:
            compute(chip)
        wall.append((time.perf_counter() - started) / len(chips) * 1000)
        cpu.append((time.process_time() - cpu_started) / len(chips) * 1000)
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


def two_at_once(chips: list[np.ndarray], repeat: int) -> dict[str, float]:
    """Median wall and CPU ms per descriptor while two threads compute descriptors at the same time."""
    network = face_network.face_network()
    network.descriptor(chips[0])

    def run(barrier: threading.Barrier) -> None:
        barrier.wait()
        for chip in chips:
            network.descriptor(chip)

    wall, cpu = [], []
    for _ in range(repeat):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=run, args=(barrier,)) for _ in range(2)]
        started, cpu_started = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall.append((time.perf_counter() - started) / (2 * len(chips)) * 1000)
        cpu.append((time.process_time() - cpu_started) / (2 * len(chips)) * 1000)
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


def contact_sheet(chips: dict[str, np.ndarray], differences: dict[str, float], out: Path) -> Path:
    import cv2

    tiles = []
    for name, chip in chips.items():
        tile = cv2.copyMakeBorder(cv2.cvtColor(chip, cv2.COLOR_RGB2BGR), 0, 40, 0, 0, cv2.BORDER_CONSTANT)
        cv2.putText(tile, name[:22], (3, 163), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1)
        cv2.putText(tile, f"max diff {differences[name]:.1e}", (3, 183), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 255, 0), 1)
        tiles.append(tile)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "face_network_chips.png"
    cv2.imwrite(str(path), np.hstack(tiles))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()

    import dlib
    import face_recognition_models as model_files

    started = time.perf_counter()
    network = face_network.read_model(model_files.face_recognition_model_location())
    load_ms = (time.perf_counter() - started) * 1000
    face_network._network = network  # the one the two-thread run uses
    encoder = dlib.face_recognition_model_v1(model_files.face_recognition_model_location())
    chips = aligned_chips()
    chip_list = list(chips.values())

    differences, distances = {}, []
    for name, chip in chips.items():
        ours = network.descriptor(chip)
        theirs = np.asarray(encoder.compute_face_descriptor(chip), dtype=np.float32)
        differences[name] = float(np.abs(ours - theirs).max())
        distances.append(float(np.linalg.norm(ours - theirs)))

    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS") or str(os.cpu_count())
    timings = {
        "dlib": per_descriptor(encoder.compute_face_descriptor, chip_list, args.repeat),
        f"numpy, {blas_threads} BLAS threads": per_descriptor(network.descriptor, chip_list, args.repeat),
        f"numpy, {blas_threads} BLAS threads, 2 at once": two_at_once(chip_list, args.repeat),
    }
    if not face_network.set_blas_threads(1):
        sys.exit("no OpenBLAS found in this process")
    timings["numpy, 1 BLAS thread"] = per_descriptor(network.descriptor, chip_list, args.repeat)
    timings["numpy, 1 BLAS thread, 2 at once"] = two_at_once(chip_list, args.repeat)

    print(
        f"{len(chip_list)} aligned chips, {args.repeat} passes; dlib.DLIB_USE_BLAS={dlib.DLIB_USE_BLAS}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; numpy model read in {load_ms:.0f} ms"
    )
    reference = timings["dlib"]
    for name, t in timings.items():
        wall_ratio, cpu_ratio = reference["wall_ms"] / t["wall_ms"], reference["cpu_ms"] / t["cpu_ms"]
        print(
            f"{name:34s} {t['wall_ms']:6.1f} ms  cpu {t['cpu_ms']:6.1f} ms per descriptor   "
            f"dlib / this: wall {wall_ratio:5.1f}x  cpu {cpu_ratio:5.1f}x"
        )
    print(
        f"numpy vs dlib: max element difference {max(differences.values()):.2e}, "
        f"max distance {max(distances):.2e} (descriptor norms about 1.4)"
    )
    print(f"contact sheet: {contact_sheet(chips, differences, args.out)}")


if __name__ == "__main__":
    main()
