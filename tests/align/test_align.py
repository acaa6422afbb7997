"""`facecli align` on real photos: MTCNN with the published weights, the haar fallback, templates, report."""

import hashlib
import json
from importlib import resources

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from facecli.align.detectors import HaarDetector, OnnxDetector
from facecli.align.folder import AlignOptions, align_folder
from facecli.align.mtcnn import MTCNN, ONet, PNet, RNet
from facecli.align.warp import ARCFACE_112, align_face, alignment_matrix, eye_angle
from facecli.cli import app
from facecli.data.images import read_image

runner = CliRunner()


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNN.pretrained()


@pytest.fixture(scope="module")
def photo(reference):
    image = read_image(reference / "faces" / "photo_kate_siegel.jpg")
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


def _rotate(image, degrees):
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_the_shipped_weights_are_the_published_state_dicts_tensor_for_tensor(reference):
    """Against SHA-256 digests of the published pnet.pt, rnet.pt and onet.pt (each tensor's bytes)."""
    published = json.loads((reference / "mtcnn" / "published_weights_sha256.json").read_text())
    shipped = load_file(str(resources.files("facecli.align") / "mtcnn.safetensors"))
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        state = {k[len(name) + 1 :]: v for k, v in shipped.items() if k.startswith(f"{name}.")}
        net.load_state_dict(state, strict=True)  # the published names, unchanged
        assert state.keys() == published[name].keys()
        for key, tensor in state.items():
            digest = hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()
            assert (list(tensor.shape), digest) == (published[name][key]["shape"], published[name][key]["sha256"]), key


def test_one_face_with_landmarks_inside_the_box(mtcnn, photo):
    boxes, landmarks = mtcnn(photo)
    assert len(boxes) == 1 and boxes[0, 4] > 0.95
    x1, y1, x2, y2 = boxes[0, :4]
    assert ((landmarks[0, :, 0] > x1) & (landmarks[0, :, 0] < x2)).all()
    assert ((landmarks[0, :, 1] > y1) & (landmarks[0, :, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks[0]
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_six_people_in_the_group_photo(mtcnn, reference):
    boxes, landmarks = mtcnn(read_image(reference / "faces" / "multiface.jpg"))
    assert len(boxes) == 6 and landmarks.shape == (6, 5, 2)
    assert (np.diff(boxes[:, 4]) <= 0).all()  # most confident first


def test_the_astronaut(mtcnn):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) is not installed")
    boxes, _ = mtcnn(skimage_data.astronaut())
    assert len(boxes) == 1


def test_noise_has_no_face(mtcnn):
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes, landmarks = mtcnn(noise)
    assert boxes.shape == (0, 5) and landmarks.shape == (0, 5, 2)


def test_a_face_rotated_15_degrees_comes_out_with_level_eyes(mtcnn, photo):
    rotated = _rotate(photo, 15)  # counter-clockwise on screen: the right eye rises
    boxes, landmarks = mtcnn(rotated)
    assert len(boxes) == 1
    assert eye_angle(landmarks[0]) == pytest.approx(-15, abs=4)
    crop = align_face(rotated, boxes[0], landmarks[0], 160, "facenet", 0.2)
    assert crop.shape == (160, 160, 3)
    again, points = mtcnn(crop)  # detect again on the aligned crop
    assert len(again) == 1 and abs(eye_angle(points[0])) < 3


def test_arcface_template_puts_the_landmarks_on_the_template(mtcnn, photo):
    boxes, landmarks = mtcnn(photo)
    matrix = alignment_matrix(boxes[0], landmarks[0], 112, "arcface", 0.0)
    moved = landmarks[0] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - ARCFACE_112).max() < 8  # a similarity transform fits five points closely
    assert align_face(photo, boxes[0], landmarks[0], 112, "arcface").shape == (112, 112, 3)


def test_haar_fallback_finds_the_face(photo):
    boxes, landmarks = HaarDetector()(photo)
    assert len(boxes) >= 1 and landmarks.shape[1:] == (5, 2)
    assert landmarks[0, 0, 0] < landmarks[0, 1, 0]  # left eye left of the right eye


def _folder(tmp_path, photo):
    root = tmp_path / "photos"
    (root / "kate").mkdir(parents=True)
    cv2.imwrite(str(root / "kate" / "portrait.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "kate" / "noise.png"), noise)
    (root / "broken.jpg").write_bytes(b"not an image")
    return root


def test_folder_alignment_report_resume_and_keep_unaligned(photo, tmp_path):
    root, out = _folder(tmp_path, photo), tmp_path / "aligned"
    report = align_folder(root, out, AlignOptions(size=96, threads=2))
    rows = pd.read_csv(out / "align_report.csv").set_index("path")
    assert rows.loc["kate/portrait.jpg", "status"] == "aligned"
    assert rows.loc["kate/noise.png", "status"] == "no face" and "no face found" in rows.loc["kate/noise.png", "reason"]
    assert rows.loc["broken.jpg", "status"] == "unreadable"
    assert read_image(out / "kate" / "portrait.jpg").shape == (96, 96, 3)
    assert not (out / "kate" / "noise.png").exists() and report.count("aligned") == 1
    again = align_folder(root, out, AlignOptions(size=96, keep_unaligned=True))
    assert again.count("exists") == 1 and again.count("unaligned") == 1
    assert read_image(out / "kate" / "noise.png").shape == (96, 96, 3)


def test_cli_align_with_arcface_template(photo, tmp_path):
    root, out = _folder(tmp_path, photo), tmp_path / "aligned"
    result = runner.invoke(app, ["align", str(root), str(out), "--size", "112", "--align-template", "arcface"])
    assert result.exit_code == 0, result.output
    assert "aligned" in result.output and read_image(out / "kate" / "portrait.jpg").shape == (112, 112, 3)
    bad = runner.invoke(app, ["align", str(root), str(out), "--align-template", "arcfase"])
    assert bad.exit_code == 2 and "did you mean 'arcface'" in bad.output


def test_an_onnx_detector_plugs_in(tmp_path, photo):
    class Fixed(torch.nn.Module):
        """A stand-in detector: one box over the middle of any image, landmarks at fixed fractions."""

        def forward(self, image):
            h, w = image.shape[2], image.shape[3]
            size = torch.stack([torch.tensor(w), torch.tensor(h)]).float()
            box = torch.cat([size * 0.25, size * 0.75, torch.ones(1)])[None]
            fractions = torch.tensor([[0.4, 0.6, 0.5, 0.42, 0.58], [0.4, 0.4, 0.5, 0.6, 0.6]])
            return box, (fractions * size[:, None]).reshape(1, 10)

    path = tmp_path / "detector.onnx"
    torch.onnx.export(
        Fixed(), (torch.zeros(1, 3, 64, 48),), str(path), input_names=["image"],
        dynamic_axes={"image": {2: "h", 3: "w"}}, dynamo=False,
    )  # fmt: skip
    boxes, landmarks = OnnxDetector(path)(photo)
    h, w = photo.shape[:2]
    assert np.allclose(boxes[0], [w / 4, h / 4, 3 * w / 4, 3 * h / 4, 1], atol=1)
    assert np.allclose(landmarks[0, 0], [0.4 * w, 0.4 * h], atol=1)


def test_a_pgm_photo_gets_a_png_crop_and_an_output_inside_the_input_is_not_aligned_again(photo, tmp_path):
    root = _folder(tmp_path, photo)
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(root / "kate" / "scan.pgm"), grey)
    out = root / "aligned"  # align IN IN/aligned
    first = align_folder(root, out, AlignOptions(size=96))
    assert first.count("aligned") == 2 and read_image(out / "kate" / "scan.png").shape == (96, 96, 3)
    again = align_folder(root, out, AlignOptions(size=96))
    assert len(again.rows) == len(first.rows) and again.count("exists") == 2  # its own crops are not photos
