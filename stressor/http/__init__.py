"""HTTP clients and transports: the wire transport, the aiohttp one, and the sharded client over them."""
