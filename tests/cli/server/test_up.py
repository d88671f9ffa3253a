"""`meshline up` gives its demo regions a country and continent, through their join tokens."""

from __future__ import annotations

from meshline.v1.resources_pb2 import RegionSpec


def test_up_places_the_demo_regions() -> None:
    from cli.server.up import demo_region_facts

    assert demo_region_facts("eu") == RegionSpec(country="FR", continent="EU")
    assert demo_region_facts("eu-central") == RegionSpec(country="FR", continent="EU")
    assert demo_region_facts("us") == RegionSpec(country="US", continent="NA")
    assert demo_region_facts("asia") == RegionSpec()
