"""The core: platform-neutral, testable without any platform.

``events`` (the normalized event), ``reply`` (the interface answers go through), ``core`` (the
one handler: claim, admit, command or turn), ``admission``/``limits``/``budgets``/``access``
(who may be answered now), ``turn`` (prepare, stream, record), ``recovery`` (after a crash),
``conversations`` (what adapters may ask), ``commands`` (the one command registry), ``agent``,
``resilient_model``, ``cost_callback`` and ``tools`` (the model side), ``attachments`` and
``documents`` (files), ``settings`` (the one reader of the environment) and ``wiring`` (the one
module that builds it all).
"""
