"""Live cameras: long-running students on URLs FFmpeg opens, real-time policy, periodic commits."""
