"""Tests; a package so that test modules of the same name in other folders do not clash."""
