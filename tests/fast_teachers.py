"""Teacher settings the tests share (a module of its own: ``conftest`` names more than one file here)."""

# A small Mask R-CNN forward pass: torchvision's internal resize (800/1333 by default) made tiny, and fewer
# proposals. Random weights at this size label a 96x64 frame in well under a second on one CPU thread.
FAST_MASKRCNN_OPTIONS = ("min_size=64,max_size=96,rpn_pre_nms_top_n_test=100,rpn_post_nms_top_n_test=50,"
                         "box_detections_per_img=8")
FAST_MASKRCNN = f"maskrcnn:{FAST_MASKRCNN_OPTIONS}"
