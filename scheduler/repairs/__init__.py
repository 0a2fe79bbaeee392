"""Repairs: an absence → a minimal-change proposal (background job) → accept or reject;
manual edits of a published roster checked by the rule catalogue."""
