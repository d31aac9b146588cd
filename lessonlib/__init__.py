"""lessonlib: the engine under the Fine-Tuning Companion notebooks.

The learner's path is the data's path::

    data file -> data doctor -> tokens & cost -> decide? -> train (local | OpenAI | Azure | AutoTrain)
                                                   ^                        |
                                                   +---- evaluate <---------+

Every arrow is a plain Python call on plain values; notebooks, widgets and the ``lessonlib``
command line are three faces over the same calls. The modules sit in layers, each importing only from
the layers below it (``docs/architecture.md`` draws them; ``make test`` checks them):

* faces: ``cli``, ``exercises``, ``labext``; ``widgets``, ``service``; ``project`` (your own data, every step)
* steps: ``cloud``, ``limits``, ``decide``; ``evaluate``, ``train``; ``data``, ``doctor``; ``tokens``,
  ``costs``, ``prompting``, ``metrics``; ``models``, ``plots``
* basics: ``local_service``, ``generation_cache``, ``corpora``, ``course``, ``jupyter``,
  ``memory_shares``, ``progress``, ``digest``, ``child``; ``system``, ``facts``; ``settings``; ``errors``, ``i18n``

Views (widgets, cli, notebooks) import steps; steps never import views. ``import lessonlib``
imports none of torch, transformers, trl or openai: they load inside the functions that use them.

>>> import lessonlib
>>> lessonlib.__version__
'0.1.0'
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

# LESSONLIB_CPU_WITHOUT=avx512: the AVX2 kernels of torch, oneDNN and MKL, chosen before torch loads
from .system import play_cpu as _play_cpu

_play_cpu()
