"""The embedded broker: kombu's filesystem transport, safe for a worker and a web server at once.

kombu's own transport creates a message file and then writes into it, and a
consumer may take the file in between: it reads zero bytes, and the worker dies
with "Unrecoverable error: JSONDecodeError" while the message is lost (kombu
issue #1551; under a steady demo load it happens within minutes). Here a
message is written under a name no consumer looks at and renamed into place,
so a consumer only ever sees whole files; a consumer claims a file by renaming
it, so exactly one consumer gets it; and a file that still cannot be read (a
disk that filled up, a stray file) is moved aside and logged instead of taking
the worker down.
"""

import contextlib
import errno
import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

log = logging.getLogger(__name__)

# What a message file is called while it is being written: not "<queue>.msg",
# so kombu's listing, counting and purging all pass it by.
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    """Whole files in, one consumer per file, unreadable files set aside."""

    @cached_property
    def rejected_folder(self):
        """Where unreadable message files go, to be looked at rather than lost."""
        return self.transport_options.get("rejected_folder", self.processed_folder)

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "xb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            _remove_quietly(partial)
            raise ChannelError(f"Cannot add file {final!r} to the queue folder: {exc}") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            source = os.path.join(self.data_folder_in, name)
            claimed = os.path.join(self.processed_folder, name)
            try:
                os.rename(source, claimed)
            except FileNotFoundError:
                if not os.path.isdir(self.processed_folder):
                    raise ChannelError(
                        f"The broker's processed_folder {self.processed_folder!r} is missing"
                    ) from None
                continue  # another consumer claimed it first
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise ChannelError(
                        "The broker's processed_folder must be on its queue folder's file system"
                    ) from exc
                raise ChannelError(f"Cannot claim {name!r} from the queue folder: {exc}") from exc
            try:
                with open(claimed, "rb") as file:
                    data = file.read()
            except OSError as exc:
                # The file is whole but could not be read now (EMFILE, EIO): put it back.
                os.replace(claimed, source)
                raise ChannelError(f"Cannot read {name!r} from the queue: {exc}") from exc
            try:
                payload = loads(bytes_to_str(data))
            except ValueError as exc:
                self._set_aside(claimed, exc)
                continue
            if not self.store_processed:
                _remove_quietly(claimed)
            return payload
        raise Empty()

    def _set_aside(self, path, reason):
        target = os.path.join(self.rejected_folder, os.path.basename(path))
        try:
            os.replace(path, target)
        except OSError:
            target = path
        log.error("broker: unreadable message file set aside at %s (%s)", target, reason)


class Transport(filesystem.Transport):
    Channel = Channel


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
