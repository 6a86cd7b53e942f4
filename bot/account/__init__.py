"""The official account's own features that are set up from the command line: the permanent QR code of
every place (`gridbot qr`) and the account's menu (`gridbot menu`)."""
