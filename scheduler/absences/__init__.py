"""Absences (缺勤): a volunteer who cannot work from one date and shift to another."""
