"""Batch face renderer of SynFER: signed distances on a pixel grid, anti-aliased by analytic pixel coverage.

Every pixel of every image is mapped back into its face frame once (:func:`geometry.image_to_face`); each facial
part is then a signed distance field ``d`` (negative inside, face-frame units) evaluated on the whole (B, H, W) grid
and painted with coverage ``clip(0.5 - d / pixel, 0, 1)``, so edges are anti-aliased at any resolution and pose,
with no Python loop over pixels or samples. Curved parts (lids, brows, lips) use the vertical distance to their
curve, which is exact enough for the gentle slopes of a face.
"""

from __future__ import annotations

import numpy as np

from .geometry import Params, image_to_face

INNER_MOUTH = np.array([0.30, 0.06, 0.08], dtype=np.float32)
TEETH = np.array([0.95, 0.93, 0.86], dtype=np.float32)
SCLERA = np.array([0.95, 0.94, 0.91], dtype=np.float32)
PUPIL = np.array([0.04, 0.03, 0.03], dtype=np.float32)
FRAME = np.array([0.12, 0.10, 0.10], dtype=np.float32)
CORNER_RADIUS = 0.016  # lips end in round caps about the mouth corners: the corner pixel is a lip pixel at 64 px


def ellipse(x, y, cx, cy, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse (Quilez's first-order correction)."""
    dx, dy = (x - cx) / rx, (y - cy) / ry
    k0 = np.sqrt(dx * dx + dy * dy)
    k1 = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    return k0 * (k0 - 1) / np.maximum(k1, 1e-6)


def segment(x, y, x0, y0, x1, y1, half_width):
    """Signed distance to a line segment of thickness ``2 * half_width`` with round caps."""
    ex, ey = x1 - x0, y1 - y0
    h = np.clip(((x - x0) * ex + (y - y0) * ey) / (ex * ex + ey * ey), 0, 1)
    return np.hypot(x - x0 - h * ex, y - y0 - h * ey) - half_width


def smooth_min(a, b, k: float):
    """Union of two distance fields with a blend radius ``k`` (no crease where the jaw meets the cranium)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def quadratic(t, y_start, y_end, y_mid):
    """Height of the parabola through (-1, y_start), (0, y_mid), (1, y_end) at ``t``."""
    return y_mid + 0.5 * t * (y_end - y_start) + t * t * (0.5 * (y_start + y_end) - y_mid)


def stripes(p, period: float, half_width: float, pixel):
    """Coverage of parallel lines ``p = k * period`` (a wrinkle family), anti-aliased."""
    dist = np.abs((p / period) % 1.0 - 0.5) * period
    return np.clip(0.5 - (dist - half_width) / pixel, 0, 1)


class Canvas:
    """A batch of images, stored planar (3, B, H, W) so that every operation runs over long contiguous rows, and the
    face-frame coordinates of its pixels; parts paint onto it."""

    def __init__(self, scene: Params, size: int):
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.size = size
        self.u, self.v = centres[None, None, :], centres[None, :, None]
        self.x, self.y = image_to_face(scene, self.u, self.v)  # (B, H, W) each
        self.pixel = _e(1.0 / (size * scene["scale"]))  # face-frame units per pixel
        self.left = self.x < _e(0.5 + scene["yaw"])  # which face half a pixel is on, for per-side parameters
        self.out = np.where(self.left, -1.0, 1.0).astype(np.float32)  # outward x direction of that half
        self.image = np.empty((3,) + self.x.shape, dtype=np.float32)

    def cover(self, d):
        return np.clip(0.5 - d / self.pixel, 0, 1)

    def side(self, per_side: np.ndarray) -> np.ndarray:
        """(B, 2) per-side values -> (B, H, W), each pixel taking its face half's value."""
        return np.where(self.left, per_side[:, :1, None], per_side[:, 1:, None])

    def paint(self, alpha, colour) -> None:
        """Alpha-blend ``colour`` (B, 3) or (3,) over the image with per-pixel ``alpha`` (B, H, W)."""
        colour = colour.T[:, :, None, None] if colour.ndim == 2 else colour[:, None, None, None]
        self.image += alpha * (colour - self.image)


def _e(array):
    """(B,) -> (B, 1, 1) to broadcast against the pixel grid."""
    return array[:, None, None]


def render_faces(identity: Params, scene: Params, geo: Params, size: int, rng: np.random.Generator):
    """Render one face per sample.

    Args:
        identity, scene, geo: per-sample parameters from :mod:`.geometry` (batch B).
        size: output height = width in pixels.
        rng: draws the sensor noise.

    Returns:
        images: (B, size, size, 3) uint8.
        masks: dict of (B, size, size) float coverages of the ``eyes``, ``lips`` (lips and mouth opening) and
            ``nose_tip``, before occluders and camera effects; for tests and debugging.
    """
    c = Canvas(scene, size)
    _background(c, scene)
    face = _head(c, identity, geo)
    mouth = _mouth_curves(c, geo)
    _skin_shading(c, geo, face, mouth)
    masks = {"nose_tip": _nose(c, identity, geo), "eyes": _eyes(c, identity, geo)}
    _brows(c, identity, geo)
    masks["lips"] = _mouth(c, identity, geo, mouth)
    _hair_glasses_occluder(c, identity, scene, geo)
    return _camera(c, scene, rng), masks


def _head(c: Canvas, identity: Params, geo: Params) -> np.ndarray:
    """Long hair behind, neck, ears, then the face: a cranium and a jaw that drops with AU26. Returns the face's
    signed distance."""
    x, y, skin = c.x, c.y, identity["skin"]
    face_y, rx, ry = _e(identity["face_y"]), _e(identity["face_rx"]), _e(identity["face_ry"])
    long_hair = np.maximum(ellipse(x, y, 0.5, face_y - 0.02, rx * 1.2, ry * 1.06), y - face_y - 0.6 * ry)
    c.paint(c.cover(long_hair) * _e((identity["hair_style"] == 1).astype(np.float32)), identity["hair_colour"])
    jaw_rx, jaw_ry = rx * _e(identity["jaw_width"]), _e(identity["jaw_ry"])
    jaw_y = face_y + ry - jaw_ry + _e(geo["jaw_drop"])
    c.paint(c.cover(np.maximum(np.abs(x - 0.5) - 0.6 * jaw_rx, jaw_y - y)), skin * 0.82)
    ear_y = _e(geo["eye_y"][:, 0]) + 0.05
    ears = ellipse(np.abs(x - 0.5), y, rx, ear_y, 0.045, 0.07)
    c.paint(c.cover(ears), skin * 0.88)
    face = smooth_min(ellipse(x, y, 0.5, face_y, rx, ry), ellipse(x, y, 0.5, jaw_y, jaw_rx, jaw_ry), 0.04)
    c.paint(c.cover(face), skin)
    return face


def _skin_shading(c: Canvas, geo: Params, face: np.ndarray, mouth: dict[str, np.ndarray]) -> None:
    """Multiplicative shading of the skin (keeps the skin tone): roundness, cheeks, nose, and the wrinkles, folds
    and creases that are the skin's AU cues."""
    x, y, out, side = c.x, c.y, c.out, lambda key: c.side(geo[key])  # noqa: E731
    eye_x, eye_y, eye_w = side("eye_x"), side("eye_y"), side("eye_w")
    nose_x, nose_y, nostril_y, nostril_w = (_e(geo[k]) for k in ("nose_x", "nose_y", "nostril_y", "nostril_w"))
    shade = 1 - 0.14 * np.clip(1 + face / 0.06, 0, 1) ** 2  # darker towards the outline: a round face
    cheek = side("cheek")
    cheek_y = eye_y + 0.1 - 0.02 * cheek
    shade += 0.12 * cheek * np.exp(-(((x - eye_x - 0.01 * out) / 0.05) ** 2 + ((y - cheek_y) / 0.035) ** 2))

    # forehead lines follow the brows; AU1 wrinkles the middle, AU2 the sides
    brow_y = 0.5 * (side("brow_inner_y") + side("brow_outer_y"))
    lateral = np.clip(np.abs(x - _e(geo["nose_x"])) / 0.17, 0, 1)
    forehead = (1 - lateral) * side("forehead_in") + lateral * side("forehead_out")
    window = np.clip((brow_y - 0.02 - y) / 0.02, 0, 1) * np.clip((y - brow_y + 0.11) / 0.02, 0, 1)
    shade -= 0.22 * forehead * window * stripes(y - 0.4 * (x - 0.5) ** 2 - brow_y, 0.028, 0.004, c.pixel)
    glabella = np.maximum(np.abs(np.abs(x - nose_x) - 0.012) - 0.003, np.abs(y - eye_y + 0.055) - 0.03)
    shade -= 0.25 * _e(geo["glabella"]) * c.cover(glabella)

    bridge = np.maximum(np.abs(x - nose_x) - 0.03, np.abs(y - eye_y - 0.06) - 0.035)
    shade -= 0.25 * _e(geo["nose_wrinkle"]) * c.cover(bridge) * stripes(y, 0.022, 0.004, c.pixel)
    nose_sides = np.exp(-(((np.abs(x - nose_x) - 0.6 * nostril_w) / 0.012) ** 2))
    shade -= 0.1 * nose_sides * np.clip((y - eye_y) / 0.08, 0, 1) * (y < nostril_y)
    shade += 0.08 * np.exp(-(((x - nose_x) / 0.025) ** 2 + ((y - nose_y) / 0.02) ** 2))

    corner_x = eye_x + out * 1.15 * eye_w  # crow's feet fan out from the outer eye corner
    crow = np.minimum(
        segment(x, y, corner_x, eye_y, corner_x + out * 0.55 * eye_w, eye_y - 0.02, 0.003),
        segment(x, y, corner_x, eye_y + 0.005, corner_x + out * 0.55 * eye_w, eye_y + 0.028, 0.003),
    )
    shade -= 0.3 * side("crows_feet") * c.cover(crow)

    # nasolabial folds: from the nose wing to just outside the mouth corner, bowed outwards
    wing_x, wing_y = nose_x + out * 1.35 * nostril_w, nostril_y - 0.01
    corner_x, corner_y = side("corner_x"), side("corner_y")
    end_y = corner_y + 0.015
    fold_t = np.clip((y - wing_y) / (end_y - wing_y), 0, 1)
    fold_x = wing_x + fold_t * (corner_x + 0.03 * out - wing_x) + 0.012 * out * np.sin(np.pi * fold_t)
    fold = np.maximum(np.abs(x - fold_x) - 0.004, np.abs(y - 0.5 * (wing_y + end_y)) - 0.5 * (end_y - wing_y))
    shade -= 0.22 * side("fold") * c.cover(fold)
    dimple = segment(x, y, corner_x + 0.016 * out, corner_y - 0.012, corner_x + 0.02 * out, corner_y + 0.012, 0.004)
    shade -= 0.35 * side("dimple") * c.cover(dimple)
    sulcus_y = mouth["lower_out"] + 0.022 + 8 * (x - mouth["mid_x"]) ** 2  # the crease above the chin (AU17)
    chin = np.maximum(np.abs(y - sulcus_y) - 0.005, np.abs(x - mouth["mid_x"]) - 0.06)
    shade -= 0.25 * _e(geo["chin"]) * c.cover(chin)
    c.image *= 1 + c.cover(face) * (shade - 1)


def _nose(c: Canvas, identity: Params, geo: Params) -> np.ndarray:
    """Nostrils; returns the coverage of the tip, whose centre is the nose-tip landmark."""
    nose_x, nose_y, nostril_y, nostril_w = (_e(geo[k]) for k in ("nose_x", "nose_y", "nostril_y", "nostril_w"))
    nostrils = ellipse(np.abs(c.x - nose_x), c.y, 0.55 * nostril_w, nostril_y, 0.014, 0.008)
    c.paint(c.cover(nostrils), identity["skin"] * 0.3)
    return c.cover(ellipse(c.x, c.y, nose_x, nose_y, 0.5 * nostril_w, 0.02))


def _eyes(c: Canvas, identity: Params, geo: Params) -> np.ndarray:
    """Almond openings between two parabolic lids, iris and pupil clipped to them, lid lines. Returns the coverage
    of the openings (the eye landmarks are the iris centres)."""
    x, y, side = c.x, c.y, lambda key: c.side(geo[key])  # noqa: E731
    eye_x, eye_y, eye_w, iris = side("eye_x"), side("eye_y"), side("eye_w"), side("iris_r")
    t = (x - eye_x) / eye_w
    bulge = np.maximum(1 - t * t, 0)
    upper, lower = eye_y - side("lid_up") * bulge, eye_y + side("lid_lo") * bulge
    eyes = c.cover(np.maximum(np.maximum(upper - y, y - lower), np.abs(x - eye_x) - eye_w))
    skin = identity["skin"]
    c.paint(eyes, SCLERA * skin.mean(1, keepdims=True) ** 0.3)
    iris_d = np.hypot(x - eye_x, y - eye_y)
    c.paint(np.minimum(c.cover(iris_d - iris), eyes), identity["iris_colour"])
    c.paint(np.minimum(c.cover(iris_d - 0.45 * iris), eyes), PUPIL)
    lid_line = np.maximum(np.abs(y - upper + 0.002) - 0.005 * (1 - 0.5 * t * t), np.abs(x - eye_x) - 1.08 * eye_w)
    c.paint(c.cover(lid_line), np.minimum(identity["hair_colour"], skin * 0.3))
    c.paint(0.4 * c.cover(np.maximum(np.abs(y - lower) - 0.002, np.abs(x - eye_x) - eye_w)), skin * 0.5)
    return eyes


def _brows(c: Canvas, identity: Params, geo: Params) -> None:
    """A tapering stroke along a parabola from the inner to the outer end of each brow."""
    side = lambda key: c.side(geo[key])  # noqa: E731
    inner_x, outer_x = side("brow_inner_x"), side("brow_outer_x")
    inner_y, outer_y = side("brow_inner_y"), side("brow_outer_y")
    half = 0.5 * np.abs(outer_x - inner_x)
    t = c.out * (c.x - 0.5 * (inner_x + outer_x)) / half  # -1 at the inner end, +1 at the outer end
    centre = quadratic(t, inner_y, outer_y, 0.5 * (inner_y + outer_y) - side("brow_arch"))
    thickness = side("brow_th") * (1 - 0.3 * (t + 1) / 2)
    brows = np.maximum(np.abs(c.y - centre) - thickness, (np.abs(t) - 1) * half)
    c.paint(c.cover(brows), np.minimum(identity["hair_colour"], identity["skin"] * 0.45))


def _mouth(c: Canvas, identity: Params, geo: Params, mouth: dict[str, np.ndarray]) -> np.ndarray:
    """Lips, the opening (inner mouth) and the upper teeth. Returns the coverage of lips and opening."""
    x, y = c.x, c.y
    lips = np.maximum(mouth["upper_out"] - y, y - mouth["lower_out"])
    lips = np.maximum(lips, mouth["extent"] - 0.04 * mouth["half"])
    corners = np.hypot(x - c.side(geo["corner_x"]), y - c.side(geo["corner_y"])) - CORNER_RADIUS
    lips = np.minimum(lips, corners)  # round ends about the corner landmarks
    opening = np.maximum(np.maximum(mouth["upper_in"] - y, y - mouth["lower_in"]), mouth["extent"])
    teeth = np.maximum(opening, np.maximum(y - mouth["upper_in"] - 0.016, mouth["extent"] + 0.3 * mouth["half"]))
    lips_alpha, opening_alpha = c.cover(lips), c.cover(opening)
    c.paint(lips_alpha, identity["lip_colour"])
    c.paint(opening_alpha, INNER_MOUTH)
    c.paint(c.cover(teeth), TEETH)
    return np.maximum(lips_alpha, opening_alpha)


def _hair_glasses_occluder(c: Canvas, identity: Params, scene: Params, geo: Params) -> None:
    """What covers the face: hair over the forehead, glasses frames, an occluding blob (image coordinates)."""
    x, y = c.x, c.y
    face_y, rx, ry = _e(identity["face_y"]), _e(identity["face_rx"]), _e(identity["face_ry"])
    hairline = _e(identity["hairline"]) + _e(identity["hair_tilt"]) * (x - 0.5) + 0.6 * (x - 0.5) ** 2
    cap = np.maximum(ellipse(x, y, 0.5, face_y - 0.01, rx * 1.07, ry * 1.04), y - hairline)
    c.paint(c.cover(cap) * _e((identity["hair_style"] != 2).astype(np.float32)), identity["hair_colour"])

    eye_x, eye_y, eye_w = c.side(geo["eye_x"]), c.side(geo["eye_y"]), c.side(geo["eye_w"])
    rings = np.abs(np.hypot(x - eye_x, (y - eye_y) * 1.2) - 1.6 * eye_w) - 0.005
    bridge = np.maximum(
        np.abs(y - _e(geo["eye_y"].mean(1)) + 0.01) - 0.004,
        np.abs(x - 0.5 - _e(scene["yaw"])) - 0.5 * _e(identity["eye_dx"]),
    )
    c.paint(c.cover(np.minimum(rings, bridge)) * _e(identity["glasses"]), FRAME)

    centre, radii = scene["occluder_centre"], scene["occluder_radii"]
    occluder = ellipse(c.u, c.v, _e(centre[:, 0]), _e(centre[:, 1]), _e(radii[:, 0]), _e(radii[:, 1]))
    c.paint(np.clip(0.5 - occluder * c.size, 0, 1) * _e(scene["occluder"]), scene["occluder_colour"])


def _mouth_curves(c: Canvas, geo: Params) -> dict[str, np.ndarray]:
    """Lip curves on the pixel grid. The lip line passes through both corners (the mouth landmarks) and the centre;
    lips keep some thickness at the corners so the corner landmark lies on lip pixels."""
    left_x, right_x = _e(geo["corner_x"][:, 0]), _e(geo["corner_x"][:, 1])
    mid_x, half = 0.5 * (left_x + right_x), 0.5 * (right_x - left_x)
    t = (c.x - mid_x) / half
    line = quadratic(t, _e(geo["corner_y"][:, 0]), _e(geo["corner_y"][:, 1]), _e(geo["lip_mid_y"]))
    profile = np.sqrt(np.maximum(1 - t * t, 0))
    thickness = 0.4 + 0.6 * profile
    upper_in = line - _e(geo["open_up"]) * profile**1.5
    lower_in = line + _e(geo["open_lo"]) * profile
    cupid = 0.25 * np.exp(-((t / 0.12) ** 2))  # the dip of the cupid's bow
    return {
        "mid_x": mid_x,
        "half": half,
        "extent": np.abs(c.x - mid_x) - half,
        "upper_in": upper_in,
        "lower_in": lower_in,
        "upper_out": upper_in - _e(geo["lip_up"]) * (thickness - cupid),
        "lower_out": lower_in + _e(geo["lip_lo"]) * thickness,
    }


def _background(c: Canvas, scene: Params) -> None:
    """Flat colour plus two coloured sine gratings (clutter), in image coordinates."""
    c.image[:] = scene["background"].T[:, :, None, None]
    for k in range(2):
        freq = scene["clutter_freq"][:, k]
        wave = np.sin(2 * np.pi * (_e(freq[:, 0]) * c.u + _e(freq[:, 1]) * c.v) + _e(scene["clutter_phase"][:, k]))
        c.image += wave * scene["clutter_colour"][:, k].T[:, :, None, None]
    np.clip(c.image, 0, 1, out=c.image)


def _camera(c: Canvas, scene: Params, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, defocus blur, sensor noise, 8-bit quantisation."""
    direction = np.cos(_e(scene["light_angle"])) * (c.u - 0.5) + np.sin(_e(scene["light_angle"])) * (c.v - 0.5)
    image = c.image * (_e(scene["brightness"]) * (1 + _e(scene["light_gain"]) * direction))
    blur = _e(scene["blur"])
    once = _blur121(image)
    twice = _blur121(once)
    image = np.where(blur < 1, image + blur * (once - image), once + (blur - 1) * (twice - once))
    image += _e(scene["noise"]) * rng.standard_normal(image.shape, dtype=np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 3, 0)


def _blur121(image: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 filter over the last two axes (H, W) with edge replication."""
    p = np.pad(image, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    p = 0.25 * (p[:, :, :-2] + p[:, :, 2:]) + 0.5 * p[:, :, 1:-1]
    return 0.25 * (p[..., :-2] + p[..., 2:]) + 0.5 * p[..., 1:-1]
