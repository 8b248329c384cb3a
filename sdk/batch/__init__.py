"""Batch scoring: file discovery, durable outputs, the local and Ray engines.

``calcsdk detect`` wires these modules; they are usable on their own:
:mod:`~calcsdk.batch.discover` (which files), :mod:`~calcsdk.batch.runner` (score them on threads),
:mod:`~calcsdk.batch.ray_engine` (score them on Ray), :mod:`~calcsdk.batch.writers` (journal and
CSV/JSONL/COCO outputs), :mod:`~calcsdk.batch.errors_log` (the errors file).
"""
