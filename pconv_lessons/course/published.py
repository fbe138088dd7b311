"""What the papers' fully trained models reach, as published, to quote beside the course's CPU-minute tables.

Every figure here is copied from the source named in its table's ``source`` (nothing is measured by the course):

- ``mmagic_places``: open-mmlab/mmagic's model-zoo READMEs for its PConv and DeepFill v2 reproductions on
  Places365-val at 256×256 with free-form masks: L1 over the hole (×100 on [0, 1] pixels), PSNR, SSIM.
- ``lama_table1``: Table 1 of Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier Convolutions"
  (WACV 2022): FID and LPIPS (lower is better) on Places at 512×512 for narrow, wide and segmentation masks, the
  released models of each method.
- ``lama_table2``: Table 2 of the same paper, the architecture ablation on Places: the same LaMa with Fourier,
  dilated or regular convolutions, narrow and wide masks.

The PConv paper's own Table 1 (L1 / PSNR / SSIM / IScore per hole-ratio bucket on Places2, against PatchMatch,
Iizuka et al., Yu et al. and the same U-Net with plain convolutions) is printed in the paper as an image; its figures
are not reproduced here because they could not be copied from a text source. ``PCONV_TABLE1_NOTE`` says where it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedTable:
    title: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", f"Source: {self.source}."]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


MMAGIC_PLACES = PublishedTable(
    title="Fully trained models on Places365-val, 256×256, free-form masks (mmagic's reproductions)",
    source="open-mmlab/mmagic model zoo, configs/partial_conv/README.md and configs/deepfillv2/README.md",
    columns=("model", "L1 ×100 ↓", "PSNR (dB) ↑", "SSIM ↑"),
    rows=(("PConv (Liu et al. 2018)", "8.78", "22.76", "0.801"),
          ("DeepFill v2 (Yu et al. 2019)", "8.64", "22.40", "0.815")),
    note="Their L1 is mmagic's MAE with the hole mask: the mean absolute error over hole pixels on [0, 1] images, ×100 "
         "(mmagic/evaluation/metrics/mae.py), the same quantity as the course's hole L1 ×100; PSNR and SSIM are over "
         "the whole image.",
)

LAMA_TABLE1 = PublishedTable(
    title="LaMa's Table 1: Places, 512×512 (FID and LPIPS, lower is better)",
    source="Suvorov et al., Resolution-robust Large Mask Inpainting with Fourier Convolutions, WACV 2022, Table 1",
    columns=("method", "params (M)", "narrow FID", "narrow LPIPS", "wide FID", "wide LPIPS", "segm. FID",
             "segm. LPIPS"),
    rows=(("LaMa-Fourier", "27", "0.63", "0.090", "2.21", "0.135", "5.35", "0.058"),
          ("CoModGAN", "109", "0.82", "0.111", "1.82", "0.147", "6.40", "0.066"),
          ("MADF", "85", "0.57", "0.085", "3.76", "0.139", "6.51", "0.061"),
          ("AOT GAN", "15", "0.79", "0.091", "5.94", "0.149", "7.34", "0.063"),
          ("GCPR", "30", "2.93", "0.143", "6.54", "0.161", "9.20", "0.073"),
          ("HiFill", "3", "9.24", "0.218", "12.8", "0.180", "12.7", "0.085"),
          ("RegionWise", "47", "0.90", "0.102", "4.75", "0.149", "7.58", "0.066"),
          ("DeepFill v2", "4", "1.06", "0.104", "5.20", "0.155", "9.17", "0.068"),
          ("EdgeConnect", "22", "1.33", "0.111", "8.37", "0.160", "9.44", "0.073"),
          ("RegionNorm", "12", "2.13", "0.120", "15.7", "0.176", "13.7", "0.082")),
    note="The paper's CelebA-HQ columns are left out. FID and LPIPS need ImageNet-trained networks, so the course's "
         "offline tables score L1 / PSNR / SSIM instead.",
)

LAMA_TABLE2 = PublishedTable(
    title="LaMa's Table 2: the same generator with Fourier, dilated or regular convolutions (Places)",
    source="Suvorov et al., Resolution-robust Large Mask Inpainting with Fourier Convolutions, WACV 2022, Table 2",
    columns=("model", "convs", "params (M)", "blocks", "narrow FID", "narrow LPIPS", "wide FID", "wide LPIPS"),
    rows=(("Base", "Fourier", "27", "9", "0.63", "0.090", "2.21", "0.135"),
          ("Base", "Dilated", "46", "9", "0.66", "0.089", "2.30", "0.136"),
          ("Base", "Regular", "46", "9", "0.60", "0.089", "3.51", "0.139"),
          ("Shallow", "Fourier", "19", "6", "0.72", "0.094", "2.31", "0.138"),
          ("Deep", "Regular", "74", "15", "0.63", "0.090", "2.62", "0.137")),
    note="The paper's reading: Fourier convolutions barely matter on narrow masks and help most on wide ones "
         "(regular convolutions: wide-mask FID 3.51 against 2.21).",
)

PCONV_TABLE1_NOTE = (
    "The PConv paper (Liu et al., ECCV 2018) reports in its Table 1 L1, PSNR, SSIM and IScore per hole-ratio bucket "
    "(0.01–0.1 … 0.5–0.6, with and without masks touching the border) on Places2 at 512×512 for PatchMatch, "
    "Iizuka et al., Yu et al., the same U-Net with plain convolutions and PConv; the figures are in the paper "
    "(arXiv:1804.07723)."
)

TABLES = {"mmagic_places": MMAGIC_PLACES, "lama_table1": LAMA_TABLE1, "lama_table2": LAMA_TABLE2}


def markdown(name: str) -> str:
    """The published table ``name`` (one of ``TABLES``) as Markdown, with its source."""
    if name not in TABLES:
        raise ValueError(f"name must be one of {', '.join(map(repr, TABLES))}, got {name!r}")
    return TABLES[name].markdown()
