"""The course's own helpers, apart from the library: what the lessons use to set up, check the student's code and
run their experiments; nothing in the library (``layers``, ``models``, ``losses``, ``masks``, ``training``,
``pretrained``, ``metrics``, ``data``, …) imports them.

- ``lesson``: ``start_lesson()`` (seed, device, fast/full mode) and ``pick(fast, full)``;
- ``ffc_checks``, ``gan_checks``, ``lama_checks``, ``painter_checks``: check cells' helpers, each compares the
  student's function with an independent reference and says which part differs;
- ``ablation``: per-image hole error, intervals and paired verdicts for the papers' ablations;
- ``resolution``: the same relative holes at k× the size, chunked inference;
- ``receptive``: effective receptive field of any model;
- ``stacks``: lesson 09's plain, dilated and FFC stacks, trained alike, and the band masks of its fair test.
"""
