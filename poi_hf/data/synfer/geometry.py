"""SynFER face parameters: identities, scenes (pose, lighting, clutter), and the geometry an AU vector produces.

Coordinates. The *face frame* is a unit square, x to the right and y down, in which an average identity has its
5 landmarks at the ArcFace template (``poi_hf.priors.ARCFACE_TEMPLATE_112 / 112``). A scene's pose maps the face
frame to image coordinates in [0, 1]::

    p_image = 0.5 + shift + scale * R(angle) @ diag(squash, 1) @ (p_face - 0.5)

Every parameter set is a ``dict[str, np.ndarray]`` whose arrays have the batch as leading axis; per-side arrays
have shape (B, 2) with side 0 = image left, side 1 = image right. All values are in face-frame units.
"""

from __future__ import annotations

import numpy as np

from ...priors import AU_NAMES

Params = dict[str, np.ndarray]

OUTWARD = np.array([-1.0, 1.0], dtype=np.float32)
"""x direction pointing away from the face midline, per side (image left, image right)."""

SKIN_LIGHT = np.array([0.96, 0.80, 0.68], dtype=np.float32)
SKIN_DARK = np.array([0.33, 0.21, 0.14], dtype=np.float32)
HAIR_COLOURS = np.array(
    [[0.08, 0.06, 0.05], [0.22, 0.14, 0.08], [0.42, 0.28, 0.15], [0.80, 0.66, 0.40], [0.55, 0.22, 0.10], [0.6] * 3],
    dtype=np.float32,
)
IRIS_COLOURS = np.array(
    [[0.30, 0.18, 0.08], [0.15, 0.09, 0.05], [0.25, 0.45, 0.65], [0.30, 0.45, 0.25], [0.45, 0.48, 0.50]],
    dtype=np.float32,
)


def _uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(np.float32)


def take(params: Params, index: np.ndarray) -> Params:
    """Rows ``index`` of every array in ``params`` (e.g. expand identities to samples)."""
    return {key: value[index] for key, value in params.items()}


def sample_identities(rng: np.random.Generator, n: int) -> Params:
    """Draw ``n`` identities: face shape, skin, eyes, brows, nose, lips, hair, glasses. Arrays (n,) or (n, 3)."""
    u = lambda low, high, shape=n: _uniform(rng, low, high, shape)  # noqa: E731
    tone = u(0.0, 1.0)[:, None]
    skin = (1 - tone) * SKIN_LIGHT + tone * SKIN_DARK + u(-0.04, 0.04, (n, 3))
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS), size=n)] * u(0.85, 1.15, (n, 1))
    lips = skin * np.float32([0.78, 0.42, 0.45]) + u(0.08, 0.2, (n, 1)) * np.float32([1, 0, 0.1])  # redder than skin
    return {
        "face_y": u(0.50, 0.54),
        "face_rx": u(0.33, 0.39),
        "face_ry": u(0.46, 0.52),
        "jaw_width": u(0.70, 0.90),  # jaw ellipse width relative to the cranium
        "jaw_ry": u(0.26, 0.32),
        "eye_dx": u(0.148, 0.168),  # half the inter-ocular distance
        "eye_y": u(0.445, 0.475),
        "eye_w": u(0.062, 0.074),  # half width of the eye opening
        "eye_open": u(0.42, 0.55),  # upper lid height / eye_w
        "eye_low": u(0.28, 0.38),  # lower lid depth / eye_w
        "iris": u(0.42, 0.50),  # iris radius / eye_w
        "brow_gap": u(0.062, 0.078),
        "brow_th": u(0.009, 0.016),  # half thickness
        "brow_arch": u(0.004, 0.018),
        "nose_y": u(0.625, 0.655),
        "nose_w": u(0.034, 0.048),
        "mouth_w": u(0.115, 0.14),  # half width, corner to corner
        "mouth_y": u(0.81, 0.835),
        "lip_up": u(0.014, 0.022),
        "lip_lo": u(0.018, 0.030),
        "skin": np.clip(skin, 0.05, 1.0),
        "lip_colour": np.clip(lips, 0, 1),
        "iris_colour": IRIS_COLOURS[rng.integers(len(IRIS_COLOURS), size=n)],
        "hair_colour": np.clip(hair, 0, 1),
        "hair_style": rng.integers(3, size=n),  # 0 short, 1 long, 2 shaved
        "hairline": u(0.14, 0.22),
        "hair_tilt": u(-0.15, 0.15),
        "glasses": (rng.random(n) < 0.15).astype(np.float32),
    }


def sample_scenes(rng: np.random.Generator, n: int, difficulty: float) -> Params:
    """Draw per-sample nuisances whose spread grows with ``difficulty`` in [0, 1]: pose, light, clutter, blur, noise,
    occluders."""
    u = lambda low, high, shape=n: _uniform(rng, low, high, shape)  # noqa: E731
    d = difficulty
    occluded = rng.random(n) < 0.3 * d
    yaw = u(-0.01 - 0.03 * d, 0.01 + 0.03 * d)
    return {
        "angle": np.clip(rng.normal(0.0, np.deg2rad(3 + 9 * d), n), -0.5, 0.5).astype(np.float32),
        "scale": u(0.87 - 0.07 * d, 0.87 + 0.07 * d),
        "shift": u(-0.02 - 0.04 * d, 0.02 + 0.04 * d, (n, 2)),
        "yaw": yaw,  # a turned head: features slide sideways and the whole face narrows
        "squash": 1 - 2.5 * np.abs(yaw),
        "light_angle": u(0, 2 * np.pi),
        "light_gain": u(0.0, 0.2 + 0.5 * d),
        "brightness": u(0.95 - 0.25 * d, 1.05 + 0.1 * d),
        "background": u(0.1, 0.9, (n, 3)),
        "clutter_colour": u(-0.15, 0.15, (n, 2, 3)),
        "clutter_freq": u(1.0, 8.0, (n, 2, 2)) * np.sign(rng.normal(size=(n, 2, 2))).astype(np.float32),
        "clutter_phase": u(0, 2 * np.pi, (n, 2)),
        "blur": u(0.0, 0.4 + 1.4 * d),  # 0..2 passes of a [1 2 1]/4 filter, interpolated
        "noise": u(0.0, 0.01 + 0.05 * d),
        "occluder": occluded.astype(np.float32),
        "occluder_centre": u(0.2, 0.8, (n, 2)),
        "occluder_radii": u(0.08, 0.2, (n, 2)),
        "occluder_colour": u(0.0, 1.0, (n, 3)),
    }


def face_geometry(identity: Params, scene: Params, aus: np.ndarray) -> Params:
    """Feature positions and shading strengths of faces showing ``aus``.

    Args:
        identity: per-sample identity parameters (already expanded to the batch).
        scene: per-sample scene parameters (only ``yaw`` is used here).
        aus: (B, 2, A) AU intensities in [0, 1] per face side, A in ``AU_NAMES`` order.

    Returns:
        Params with per-side (B, 2) and per-face (B,) arrays, in face-frame units. The AU effects are sized so that a
        full-intensity AU moves its feature by one to three pixels at 64 px.
    """
    a = {name: aus[:, :, i] for i, name in enumerate(AU_NAMES)}  # (B, 2) per side
    m = {name: value.mean(1) for name, value in a.items()}  # (B,) both sides
    col = lambda key: identity[key][:, None]  # noqa: E731  (B, 1), broadcasts against sides
    yaw = scene["yaw"]

    eye_x = 0.5 + yaw[:, None] + OUTWARD * col("eye_dx")
    eye_y = np.repeat(col("eye_y"), 2, axis=1)
    eye_w = np.repeat(col("eye_w"), 2, axis=1)
    upper_lid = 1 + 0.9 * a["AU5"] - 0.35 * a["AU7"] - 0.2 * a["AU6"] - 0.15 * a["AU4"]
    lower_lid = 1 + 0.25 * a["AU5"] - 0.55 * a["AU7"] - 0.45 * a["AU6"]
    lid_up = eye_w * col("eye_open") * np.maximum(upper_lid, 0.35)  # lids never close over the iris centre
    lid_lo = eye_w * col("eye_low") * np.maximum(lower_lid, 0.3)

    brow_base = eye_y - col("brow_gap")
    brow_inner_x = eye_x - OUTWARD * (0.85 * eye_w + 0.018 * a["AU4"])  # AU4 draws the brows together
    brow_outer_x = eye_x + OUTWARD * 1.3 * eye_w
    brow_inner_y = brow_base - 0.045 * a["AU1"] - 0.01 * a["AU2"] + 0.03 * a["AU4"] + 0.008 * a["AU9"]
    brow_outer_y = brow_base + 0.008 - 0.045 * a["AU2"] + 0.008 * a["AU4"]
    brow_arch = col("brow_arch") + 0.012 * a["AU2"] - 0.008 * a["AU1"] - 0.005 * a["AU4"]

    nose_x = 0.5 + 1.5 * yaw  # the tip is nearer the camera than the eyes, so it slides further
    nostril_y = identity["nose_y"] + 0.018 - 0.012 * m["AU9"] - 0.006 * m["AU10"]
    nostril_w = identity["nose_w"] * (1 + 0.25 * m["AU9"] + 0.1 * m["AU10"])

    outward = 0.022 * a["AU12"] + 0.032 * a["AU20"] - 0.012 * a["AU14"] - 0.018 * a["AU23"] - 0.01 * a["AU24"]
    corner_x = 0.5 + 1.2 * yaw[:, None] + OUTWARD * (col("mouth_w") + outward + 0.008 * a["AU26"])
    corner_y = (
        col("mouth_y")
        - 0.035 * a["AU12"]
        - 0.012 * a["AU14"]
        + 0.035 * a["AU15"]
        + 0.01 * a["AU20"]
        + 0.012 * a["AU26"]
        - 0.006 * a["AU10"]
    )
    opening = (0.018 * m["AU25"] + 0.055 * m["AU26"] + 0.01 * m["AU16"]) * (1 - 0.9 * m["AU24"])
    thin = 1 - 0.55 * m["AU23"] - 0.45 * m["AU24"] - 0.25 * m["AU20"] - 0.2 * m["AU12"]
    return {
        "eye_x": eye_x,
        "eye_y": eye_y,
        "eye_w": eye_w,
        "lid_up": lid_up,
        "lid_lo": lid_lo,
        "iris_r": eye_w * col("iris"),
        "brow_inner_x": brow_inner_x,
        "brow_inner_y": brow_inner_y,
        "brow_outer_x": brow_outer_x,
        "brow_outer_y": brow_outer_y,
        "brow_arch": brow_arch,
        "brow_th": np.repeat(col("brow_th"), 2, axis=1) * (1 + 0.2 * a["AU4"]),
        "nose_x": nose_x,
        "nose_y": identity["nose_y"],
        "nostril_y": nostril_y,
        "nostril_w": nostril_w,
        "corner_x": corner_x,
        "corner_y": corner_y,
        "lip_mid_y": identity["mouth_y"] - 0.012 * m["AU17"] - 0.004 * m["AU10"] + 0.006 * m["AU26"],
        "open_up": 0.3 * opening + 0.012 * m["AU10"],  # AU10 lifts the upper lip off the teeth
        "open_lo": 0.7 * opening + 0.008 * m["AU16"],
        "lip_up": identity["lip_up"] * np.maximum(thin, 0.3),
        "lip_lo": identity["lip_lo"] * np.maximum(thin + 0.35 * m["AU17"], 0.3),
        "jaw_drop": 0.045 * m["AU26"] + 0.01 * m["AU25"],
        # shading strengths in [0, ~1.5]
        "forehead_in": a["AU1"],
        "forehead_out": a["AU2"],
        "glabella": m["AU4"] + 0.5 * m["AU9"],
        "cheek": a["AU6"] + 0.4 * a["AU12"],
        "crows_feet": a["AU6"],
        "fold": 0.25 + 0.6 * a["AU12"] + 0.5 * a["AU10"] + 0.4 * a["AU9"] + 0.3 * a["AU6"],
        "nose_wrinkle": m["AU9"],
        "dimple": a["AU14"],
        "chin": 0.15 + 0.85 * m["AU17"],
    }


def face_to_image(scene: Params, points: np.ndarray) -> np.ndarray:
    """Map face-frame points (B, P, 2) to image coordinates in [0, 1] with each sample's pose."""
    cos, sin = np.cos(scene["angle"])[:, None], np.sin(scene["angle"])[:, None]
    x = (points[..., 0] - 0.5) * scene["squash"][:, None]
    y = points[..., 1] - 0.5
    s = scene["scale"][:, None]
    u = 0.5 + scene["shift"][:, :1] + s * (cos * x - sin * y)
    v = 0.5 + scene["shift"][:, 1:] + s * (sin * x + cos * y)
    return np.stack([u, v], axis=-1)


def image_to_face(scene: Params, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`face_to_image` for image coordinate grids ``u, v`` (broadcast against (B, 1, 1))."""
    e = lambda key: scene[key][:, None, None]  # noqa: E731
    cos, sin = np.cos(e("angle")), np.sin(e("angle"))
    du = (u - 0.5 - scene["shift"][:, 0, None, None]) / e("scale")
    dv = (v - 0.5 - scene["shift"][:, 1, None, None]) / e("scale")
    x = (cos * du + sin * dv) / e("squash")
    y = -sin * du + cos * dv
    return x + 0.5, y + 0.5


def landmarks(geometry: Params, scene: Params) -> np.ndarray:
    """The 5 landmarks (B, 5, 2) in image [0, 1] coordinates, order of ``poi_hf.priors.LANDMARK_NAMES``."""
    g = geometry
    points = np.stack(
        [
            np.stack([g["eye_x"][:, 0], g["eye_y"][:, 0]], -1),
            np.stack([g["eye_x"][:, 1], g["eye_y"][:, 1]], -1),
            np.stack([g["nose_x"], g["nose_y"]], -1),
            np.stack([g["corner_x"][:, 0], g["corner_y"][:, 0]], -1),
            np.stack([g["corner_x"][:, 1], g["corner_y"][:, 1]], -1),
        ],
        axis=1,
    )
    return face_to_image(scene, points).astype(np.float32)
