"""The export file's way from storage to the reader: fetched, proven whole, spooled unnamed.

``fetch`` downloads the pre-signed URL with resumption and retries (``redirects`` opens it at
the file's offset, ``statuses`` reads storage's answer, ``writer`` copies and paces the body,
``budget`` counts the attempts), ``integrity`` proves the file whole (MD5 against storage's
ETag, the gzip stream to its end), ``storage`` keeps credentials and signatures away from the
storage host and the log, ``spool`` holds the file on disk without a name, and ``background``
runs the download in a thread of its own while the stream reads the file behind it
(``background.read_while_downloading``).

The file lives in an unlinked spool: no crash leaves the users' data on disk. The download
writes it in a thread of its own while the stream's thread parses and emits behind it, so on a
slow link the wall time approaches the longer of the two instead of their sum. What that
changes, and what it keeps:

- The stream moves the bookmark only after the reading ends: then the download proved the file
  whole and checked it (length, MD5, gzip) and every row was read.
- A download failure reaches the stream's thread as the download's own one-line error (the
  spool is aborted with it, and the reader raises it at its next read).
- A file of at least ``OVERLAP_FROM_BYTES`` (stated by storage, or received so far) is parsed
  as it arrives, so its rows may be emitted before the file is proven whole: if the download
  then fails, the next run emits them again (the bookmark did not move; targets upsert by key).
  A smaller file is read once it is proven whole.
- When the file starts over (storage ignored ``Range``, the file changed, or it arrived
  corrupt and is downloaded again), the new file is read from its first row: rows already
  emitted are emitted again (corrected, if the first copy was corrupt), and the ids the stream
  emitted this sync are put back as they were before the file.
- Bad data met while the file is still arriving (an invalid row, broken gzip) may be the
  download's fault: the reader first waits for the download's verdict, and the row error
  stands only for a file proven whole.
"""
