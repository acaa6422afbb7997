"""facecli's MTCNN against the reference detector (facenet-pytorch 2.6's MTCNN, same weights and settings).

The reference detections (tests/fixtures/reference/mtcnn/facenet_pytorch_detections.json) were made on
each photo, resized first to 1280 px on the long side when larger; facecli is given the photo as it is.
"""

import json

import numpy as np
import pytest
from skimage import data as skimage_data

from facecli.align.mtcnn import MTCNN
from facecli.data.images import read_image

# fractions of the face's side; the issue asked for 1% / 3% (landmarks) and 2% / 4% (boxes)
MEDIAN_LIMIT, MAX_LIMIT = 0.001, 0.005


def _detections(reference):
    return json.loads((reference / "mtcnn" / "facenet_pytorch_detections.json").read_text())["images"]


def _photo(reference, name):
    return skimage_data.astronaut() if name == "astronaut.png" else read_image(reference / "faces" / name)


@pytest.fixture(scope="module")
def compared(reference):
    """Per reference face: (photo, box error, landmark error, score difference), errors / face side."""
    mtcnn, rows = MTCNN.pretrained(), []
    for name, expected in _detections(reference).items():
        image = _photo(reference, name)
        boxes, landmarks = mtcnn(image)
        to_photo = max(image.shape[:2]) / max(expected["input_hw"])
        assert len(boxes) == len(expected["boxes"]), name
        for box, points, score in zip(expected["boxes"], expected["landmarks"], expected["scores"], strict=True):
            box, points = np.array(box) * to_photo, np.array(points) * to_photo
            side = max(box[2] - box[0], box[3] - box[1])
            match = int(np.abs(boxes[:, :4] - box).max(1).argmin())
            rows.append(
                (
                    name,
                    np.abs(boxes[match, :4] - box).max() / side,
                    np.linalg.norm(landmarks[match] - points, axis=1).max() / side,
                    abs(boxes[match, 4] - score),
                )
            )
    return rows


def test_every_reference_photo_is_compared(compared, reference):
    assert {row[0] for row in compared} == set(_detections(reference))
    assert len(compared) == 11  # the six of the group photo, the portrait, three LFW-style crops, the astronaut


def test_landmarks_match_the_reference(compared):
    errors = np.array([row[2] for row in compared])
    assert np.median(errors) <= MEDIAN_LIMIT and errors.max() <= MAX_LIMIT, errors


def test_boxes_match_the_reference(compared):
    errors = np.array([row[1] for row in compared])
    assert np.median(errors) <= MEDIAN_LIMIT and errors.max() <= MAX_LIMIT, errors


def test_scores_match_the_reference(compared):
    assert max(row[3] for row in compared) < 1e-3


def test_each_face_is_matched_once(reference):
    """Matching by nearest box must not let two reference faces claim the same detection."""
    mtcnn = MTCNN.pretrained()
    expected = _detections(reference)["multiface.jpg"]
    boxes, _ = mtcnn(_photo(reference, "multiface.jpg"))
    matches = {int(np.abs(boxes[:, :4] - np.array(box)).max(1).argmin()) for box in expected["boxes"]}
    assert len(matches) == len(expected["boxes"])
