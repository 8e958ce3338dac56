"""The JITNet student and the teachers that label its keyframes."""
