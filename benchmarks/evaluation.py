"""Evaluation and re-ranking at Market-1501 scale: ours vs torchreid 0.2.5 (numpy path), side by side.

Builds seeded Market-sized features (3,368 queries, 15,913 gallery images of which some are junk
(-1) and distractors (0), 6 cameras), then runs each side in its own subprocess so that wall time
and peak memory (ru_maxrss) are measured per side:

  ours  mpm.evaluation.evaluate_rank / k_reciprocal_rerank (features -> re-ranked distances)
  peer  torchreid 0.2.5 rank.evaluate_rank(use_cython=False) / rerank.re_ranking, loaded by file
        path from the PyPI sdist (never copied into this repository); its distances in numpy

torchreid drops junk before evaluation, so both sides are compared on the gallery without junk.
If the peer cannot be obtained, re-ranking is compared with tests/reference_rerank.py on a subset.

  python benchmarks/evaluation.py [--peer-dir DIR] [--dim 1536] [--msmt]

--msmt runs our re-ranking and evaluation at MSMT17 scale (11,659 x 82,161) instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PEER_VERSION = "0.2.5"
PEER_FILES = {"rank": "torchreid/reid/metrics/rank.py", "rerank": "torchreid/reid/utils/rerank.py"}
MARKET = {"queries": 3368, "gallery": 15913, "identities": 750, "junk": 800, "distractors": 2000}
MSMT = {"queries": 11659, "gallery": 82161, "identities": 3060, "junk": 0, "distractors": 0}


def build_features(sizes: dict, dim: int, seed: int, cameras: int = 6) -> dict[str, np.ndarray]:
    """Seeded clustered features: one centre per identity, a per-camera shift and per-image noise.

    Distractors come from identities outside the test set, junk from test identities. Values are
    quantised to multiples of 1/64 in [-4, 4] and norms stay below 2**11, so that float32 distances
    between near neighbours are exact whatever the summation order: both sides rank identical numbers.
    """
    rng = np.random.default_rng(seed)
    outsiders = sizes["identities"] // 2
    centres = 0.34 * rng.standard_normal((sizes["identities"] + 1 + outsiders, dim)).astype(np.float32)
    shifts = 0.1 * rng.standard_normal((cameras, dim)).astype(np.float32)
    identified = sizes["gallery"] - sizes["junk"] - sizes["distractors"]
    q_pids = rng.integers(1, sizes["identities"] + 1, sizes["queries"])
    g_pids = np.concatenate([rng.integers(1, sizes["identities"] + 1, identified),
                             np.zeros(sizes["distractors"], dtype=np.int64), -np.ones(sizes["junk"], dtype=np.int64)])
    q_cams, g_cams = rng.integers(0, cameras, sizes["queries"]), rng.integers(0, cameras, sizes["gallery"])

    def images(pids, cams, noise):
        owner = np.where(pids > 0, pids, np.where(pids == 0, sizes["identities"] + 1 + rng.integers(0, outsiders, len(pids)),
                                                   rng.integers(1, sizes["identities"] + 1, len(pids))))
        values = centres[owner] + shifts[cams] + noise * rng.standard_normal((len(pids), dim)).astype(np.float32)
        return np.clip(np.round(values * 64), -256, 256) / 64

    return {"q_feats": images(q_pids, q_cams, 1.0), "g_feats": images(g_pids, g_cams, 1.0),
            "q_pids": q_pids, "g_pids": g_pids, "q_cams": q_cams, "g_cams": g_cams}


def locate_peer(peer_dir: Path) -> dict[str, Path] | None:
    """Paths of torchreid's rank.py and rerank.py under ``peer_dir``, downloading the sdist there if absent."""
    def found():
        roots = sorted(peer_dir.glob(f"torchreid-{PEER_VERSION}"))
        if roots and all((roots[0] / rel).is_file() for rel in PEER_FILES.values()):
            return {name: roots[0] / rel for name, rel in PEER_FILES.items()}
        return None

    if found() is None:
        peer_dir.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                   f"torchreid=={PEER_VERSION}", "-d", str(peer_dir)], capture_output=True, text=True)
        for archive in peer_dir.glob(f"torchreid-{PEER_VERSION}.tar.gz"):
            with tarfile.open(archive) as tar:
                tar.extractall(peer_dir, filter="data")
        if found() is None:
            print(f"peer unavailable: pip download torchreid=={PEER_VERSION} failed "
                  f"({download.stderr.strip().splitlines()[-1:] or 'no message'})")
    return found()


def load_module(name: str, path: Path):
    """Import one file as a module, without its package's __init__."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numpy_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances in numpy (the peer's side)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def current_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _prepare(task: str, workdir: Path, peer: dict[str, str]):
    """Load the inputs of one task and return the call to time (imports and loading are not timed)."""
    data = dict(np.load(workdir / "inputs.npz"))
    keep = data["g_pids"] != -1 if task != "ours-eval-junk" else np.ones(len(data["g_pids"]), dtype=bool)
    g_pids, g_cams, q_pids, q_cams = data["g_pids"][keep], data["g_cams"][keep], data["q_pids"], data["q_cams"]
    if task in ("ours-eval", "ours-eval-junk", "peer-eval"):
        distmat = np.load(workdir / "distmat.npy")
        if not keep.all():
            distmat = np.ascontiguousarray(distmat[:, keep])
        if task == "peer-eval":
            rank = load_module("peer_rank", Path(peer["rank"]))
            return lambda: dict(zip(("cmc", "mAP"), rank.evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams,
                                                                       max_rank=50, use_cython=False)))
        from mpm.evaluation import evaluate_rank

        def ours_eval():
            result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
            return {"cmc": result.cmc, "mAP": result.mean_ap}
        return ours_eval
    queries, gallery = data["q_feats"], np.ascontiguousarray(data["g_feats"][keep])
    if task == "peer-rerank":
        rerank = load_module("peer_rerank", Path(peer["rerank"]))
        return lambda: {"dist": rerank.re_ranking(numpy_distances(queries, gallery), numpy_distances(queries, queries),
                                                  numpy_distances(gallery, gallery))}
    import torch

    from mpm.evaluation import k_reciprocal_rerank
    return lambda: {"dist": k_reciprocal_rerank(torch.from_numpy(queries), torch.from_numpy(gallery)).numpy()}


def worker(task: str, workdir: Path, peer: dict[str, str]) -> None:
    """Run one side of one task; write its timing, memory and outputs into ``workdir``."""
    call = _prepare(task, workdir, peer)
    start_rss = current_rss_gb()
    start = time.perf_counter()
    outputs = call()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    np.savez(workdir / f"{task}.npz", **outputs)
    (workdir / f"{task}.json").write_text(json.dumps({"seconds": seconds, "peak_gb": peak, "start_gb": start_rss}))


def run_side(task: str, workdir: Path, peer: dict[str, Path] | None) -> dict:
    command = [sys.executable, __file__, "--worker", task, "--workdir", str(workdir)]
    if peer:
        command += ["--peer-json", json.dumps({k: str(v) for k, v in peer.items()})]
    subprocess.run(command, check=True, cwd=REPO)
    return {**json.loads((workdir / f"{task}.json").read_text()), **dict(np.load(workdir / f"{task}.npz"))}


def show(name: str, ours: dict, peer: dict | None) -> None:
    def cell(side):
        return f"{side['seconds']:8.2f} s  peak {side['peak_gb']:5.2f} GiB (+{side['peak_gb'] - side['start_gb']:5.2f})"
    print(f"{name:<22} ours {cell(ours)}")
    if peer is not None:
        print(f"{'':<22} peer {cell(peer)}   ratio time {peer['seconds'] / ours['seconds']:6.1f}x, "
              f"memory above start {(peer['peak_gb'] - peer['start_gb']) / max(ours['peak_gb'] - ours['start_gb'], 1e-3):5.1f}x")


def compare_with_transcription(data: dict, subset: int = 300) -> None:
    """Fallback proof when the peer is unavailable: re-ranking on a subset vs tests/reference_rerank.py."""
    import torch

    from mpm.evaluation import k_reciprocal_rerank, pairwise_distance
    sys.path.insert(0, str(REPO / "tests"))
    from reference_rerank import reference_rerank
    q, g = torch.from_numpy(data["q_feats"][:subset // 3]), torch.from_numpy(data["g_feats"][:subset - subset // 3])
    reference = reference_rerank(*(pairwise_distance(a, b).double().numpy() for a, b in ((q, g), (q, q), (g, g))))
    difference = np.abs(k_reciprocal_rerank(q, g).numpy() - reference).max()
    print(f"re-ranking vs transcription on {subset} points: max |difference| = {difference:.2e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-dir", type=Path, default=Path(tempfile.gettempdir()) / "mpm-peer-torchreid")
    parser.add_argument("--dim", type=int, default=1536, help="feature dimension (MPM: 6 parts x 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--msmt", action="store_true", help="our side only, at MSMT17 scale")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--peer-json", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.workdir, json.loads(args.peer_json))
        return 0

    import torch

    from mpm.evaluation import pairwise_distance
    sizes = MSMT if args.msmt else MARKET
    data = build_features(sizes, args.dim, args.seed)
    print(f"features: {len(data['q_pids'])} queries, {len(data['g_pids'])} gallery "
          f"({int((data['g_pids'] == -1).sum())} junk, {int((data['g_pids'] == 0).sum())} distractors), "
          f"dim {args.dim}, seed {args.seed}; {torch.get_num_threads()} threads")
    peer = None if args.msmt else locate_peer(args.peer_dir)
    with tempfile.TemporaryDirectory(prefix="mpm-bench-") as tmp:
        workdir = Path(tmp)
        np.savez(workdir / "inputs.npz", **data)
        distmat = pairwise_distance(torch.from_numpy(data["q_feats"]), torch.from_numpy(data["g_feats"])).numpy()
        np.save(workdir / "distmat.npy", distmat)
        del distmat
        ours_eval = run_side("ours-eval", workdir, peer)
        if (data["g_pids"] == -1).any():
            with_junk = run_side("ours-eval-junk", workdir, peer)
            print(f"ours, junk left to the evaluator: R1 {with_junk['cmc'][0]:.4f} mAP {float(with_junk['mAP']):.4f}"
                  f" in {with_junk['seconds']:.2f} s")
        peer_eval = run_side("peer-eval", workdir, peer) if peer else None
        show("evaluation (no junk)" if (data["g_pids"] == -1).any() else "evaluation", ours_eval, peer_eval)
        print(f"{'':<22} ours R1 {ours_eval['cmc'][0]:.4f} mAP {float(ours_eval['mAP']):.6f}")
        if peer_eval is not None:
            print(f"{'':<22} agreement: max |CMC diff| {np.abs(ours_eval['cmc'] - peer_eval['cmc']).max():.1e}, "
                  f"|mAP diff| {abs(float(ours_eval['mAP']) - float(peer_eval['mAP'])):.1e} (target 1e-6)")
        ours_rr = run_side("ours-rerank", workdir, peer)
        peer_rr = run_side("peer-rerank", workdir, peer) if peer else None
        show("re-ranking (features)", ours_rr, peer_rr)
        if peer_rr is not None:
            print(f"{'':<22} agreement: max |re-ranked distance diff| "
                  f"{np.abs(ours_rr['dist'] - peer_rr['dist']).max():.1e} (target 1e-5); queries with a row "
                  f"off by more than 1e-5: {int((np.abs(ours_rr['dist'] - peer_rr['dist']) > 1e-5).any(1).sum())}")
        elif not args.msmt:
            compare_with_transcription(data)
        if not args.msmt:
            print(f"targets: evaluation <= 2 s ({'met' if ours_eval['seconds'] <= 2 else 'missed'}), re-ranking <= 15 s "
                  f"({'met' if ours_rr['seconds'] <= 15 else 'missed'}) and <= 2 GB peak "
                  f"({'met' if ours_rr['peak_gb'] <= 2 else 'missed'}) on this machine under its current load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
