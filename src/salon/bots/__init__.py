"""Ready bots built on the SDK (:mod:`salon.client`): echo, record and play (docs/SDK.md).

Each is a :class:`~salon.bots.base.Bot` run by :func:`~salon.bots.base.run_bot` in a room
or answering direct calls; ``salon bot …`` runs them from the command line
(:mod:`salon.bots.command`). They need the ``client`` extra (aiortc, PyAV).
"""

from salon.bots.base import Bot, BotError, StopBot, Target, run_bot

__all__ = ["Bot", "BotError", "StopBot", "Target", "run_bot"]
