"""Sort-based shuffle: map-side writer, MapOutputTracker, reduce-side reader, spilling."""
