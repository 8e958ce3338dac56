import numpy as np
import pytest
from hostile import png_declaring
from PIL import Image

from odist.config import DEFAULT_CLASSES, TeacherConfig
from odist.errors import TeacherError
from odist.models.teachers import build_teacher
from odist.models.teachers.replay import ReplayTeacher, component_boxes, label_filename, write_labels
from odist.video.frame import Frame

H, W = 12, 16


def _frame(index: int, height: int = H, width: int = W) -> Frame:
    return Frame(index=index, image=np.zeros((height, width, 3), dtype=np.uint8))


def _classes() -> np.ndarray:
    classes = np.zeros((H, W), dtype=np.uint8)
    classes[1:4, 2:5] = 1  # a person
    classes[8:11, 10:15] = 1  # another person
    classes[5:7, 6:9] = 2  # a vehicle
    return classes


def test_component_boxes_one_per_region_in_pixel_edges():
    boxes = component_boxes(_classes(), len(DEFAULT_CLASSES))
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[1, 2, 1, 5, 4], [1, 10, 8, 15, 11], [2, 6, 5, 9, 7]])


def test_diagonal_neighbours_form_one_region():
    classes = np.zeros((4, 4), dtype=np.uint8)
    classes[0, 0] = classes[1, 1] = 3
    np.testing.assert_array_equal(component_boxes(classes, 4), [[3, 0, 0, 2, 2]])


def test_round_trip_from_directory_and_file_uri(tmp_path):
    path = write_labels(tmp_path, 42, _classes())
    assert path.name == label_filename(42) == "000042.png"
    config = TeacherConfig(charged_ms=300.0, charged_gflops=520.0)
    for spec in (f"replay:{tmp_path}", f"replay:{tmp_path.as_uri()}"):
        teacher = build_teacher(spec, config, DEFAULT_CLASSES)
        assert isinstance(teacher, ReplayTeacher)
        result = teacher.label([_frame(42), _frame(42)])
        np.testing.assert_array_equal(result.labels[0].classes, _classes())
        assert result.labels[0].classes.dtype == np.uint8
        np.testing.assert_array_equal(result.labels[0].boxes, component_boxes(_classes(), 4))
        assert result.seconds == pytest.approx(0.6) and result.gflops == pytest.approx(1040.0)
        assert teacher.gflops_per_frame(H, W) == 520.0


def test_palette_png_values_are_class_ids(tmp_path):
    image = Image.fromarray(_classes(), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (3 * 253))
    image.save(tmp_path / "000003.png")
    labels = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES).label([_frame(3)]).labels[0]
    np.testing.assert_array_equal(labels.classes, _classes())


def test_missing_label_names_expected_file_and_frame(tmp_path):
    write_labels(tmp_path, 0, _classes())
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match=r"frame 5") as info:
        teacher.label([_frame(0), _frame(5)])
    assert str(tmp_path / "000005.png") in str(info.value)


def test_size_mismatch_names_file_sizes_and_fix(tmp_path):
    write_labels(tmp_path, 1, _classes())
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError) as info:
        teacher.label([_frame(1, height=24, width=32)])
    message = str(info.value)
    assert "000001.png" in message and "16x12" in message and "32x24" in message
    assert "--width/--height" in message


@pytest.mark.parametrize(("width", "height"), [(60000, 60000), (9000, 8000)])
def test_a_label_declaring_more_pixels_than_a_frame_is_refused_before_decoding(tmp_path, width, height):
    (tmp_path / "000000.png").write_bytes(png_declaring(width, height))
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match=f"declares {width}x{height} pixels, more than 67108864") as info:
        teacher.label([_frame(0)])
    assert "--width/--height" in str(info.value)


def test_class_id_out_of_range(tmp_path):
    classes = _classes()
    classes[0, 0] = 4
    write_labels(tmp_path, 2, classes)
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match="class id 4"):
        teacher.label([_frame(2)])


def test_rgb_png_is_rejected(tmp_path):
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(tmp_path / "000000.png")
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match="'RGB'"):
        teacher.label([_frame(0)])


def test_missing_directory_and_missing_location(tmp_path):
    with pytest.raises(TeacherError, match="does not exist"):
        build_teacher(f"replay:{tmp_path / 'nope'}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match="label location"):
        build_teacher("replay", TeacherConfig(), DEFAULT_CLASSES)


def test_write_labels_rejects_non_maps(tmp_path):
    with pytest.raises(ValueError, match="HxW"):
        write_labels(tmp_path, 0, np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        write_labels(tmp_path, 0, np.full((2, 2), 300))


def test_s3_round_trip_and_missing_key(tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="labels")
        client.put_object(Bucket="labels", Key="cam1/000004.png",
                          Body=write_labels(tmp_path, 4, _classes()).read_bytes())
        teacher = build_teacher("replay:s3://labels/cam1", TeacherConfig(), DEFAULT_CLASSES)
        np.testing.assert_array_equal(teacher.label([_frame(4)]).labels[0].classes, _classes())
        with pytest.raises(TeacherError, match=r"s3://labels/cam1/000005.png"):
            teacher.label([_frame(5)])
        with pytest.raises(TeacherError, match="no replay labels"):
            build_teacher("replay:s3://labels/empty", TeacherConfig(), DEFAULT_CLASSES)


def test_a_label_that_is_no_image_is_one_line_without_python_reprs(tmp_path):
    (tmp_path / "000000.png").write_bytes(b"not a png at all")
    teacher = build_teacher(f"replay:{tmp_path}", TeacherConfig(), DEFAULT_CLASSES)
    with pytest.raises(TeacherError, match="is not a readable image") as refused:
        teacher.label([_frame(0)])
    assert "object at 0x" not in str(refused.value) and "_io." not in str(refused.value)
