"""How a run is driven: its config, task preparation, the runner, sharding and merging, the Ray
launcher, prompt rendering without a model (render), scoring predictions made elsewhere
(score_external) and the sequential gate (seqgate)."""
