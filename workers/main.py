"""Entry module for `dramatiq workers.main`: broker and actors from the environment's settings."""

from __future__ import annotations

import dramatiq

from meetsync.logging import configure
from meetsync.settings import get_settings
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

settings = get_settings()
configure(settings.log_level)
broker = make_broker(settings.broker_url)
dramatiq.set_broker(broker)
pipeline = declare(broker, Runtime(settings))
