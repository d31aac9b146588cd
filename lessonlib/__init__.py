"""lessonlib: the engine under the Fine-Tuning Companion notebooks.

The learner's path is the data's path::

    data file -> data doctor -> tokens & cost -> decide? -> train (local | OpenAI | Azure | AutoTrain)
                                                   ^                        |
                                                   +---- evaluate <---------+

Every arrow is a plain Python call on plain values; notebooks, widgets and the ``lessonlib``
command line are three faces over the same calls. Modules, from the basics up:

============  ===================================================================  ============
module        owns                                                                 status
============  ===================================================================  ============
``settings``  cache and run folders, environment variables, offline switches        ready
``errors``    :class:`LessonError`: one line of problem, one line of fix            ready
``system``    machine facts: packages, CPU features, memory, the C library, GPU     ready
``doctor``    ``lessonlib doctor``: can the offline course run here, what is open   ready
``jupyter``   the learner's other kernels, through the Jupyter server's REST API    ready
``binder``    the memory each notebook's kernel may keep within Binder's 2 GB       ready
``models``    prepare, load and chat with the local model (GGUF -> cached folder)   ready
``widgets``   ipywidgets views: chat, data doctor, break-even, training, before/after, ready
              other kernels
``cli``       ``lessonlib ...`` subcommands                                         ready
``corpora``   the course's data sets (recipes, text-to-SQL), generated from a seed  ready
``data``      read, validate, convert and split chat files                          ready
``tokens``    exact token counts (tiktoken offline, local tokenizers)               ready
``costs``     price table, training/inference cost, break-even                      ready
``prompting`` zero-shot and few-shot chat prompts                                  ready
``plots``     charts for notebooks and widgets (the service draws them for kernels) ready
``train``     run config, SFT recipe (public TRL/PEFT), machine plan, guarded       ready
              measures, runner (in-process or in a child process), progress events
``evaluate``  zero-shot / few-shot / BM25 retrieval / tuned strategies and metrics  ready
``decide``    the lesson's checklist -> recommendation with reasons                 ready
``cloud``     OpenAI / Azure jobs and deployment, AutoTrain config, keys, budget     ready
``service``   the OpenAI and Azure OpenAI fine-tuning and chat APIs on loopback,    ready
              trained locally
============  ===================================================================  ============

Views (widgets, cli, notebooks) import steps; steps never import views. ``import lessonlib``
imports none of torch, transformers, trl or openai: they load inside the functions that use them.

>>> import lessonlib
>>> lessonlib.__version__
'0.1.0'
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
