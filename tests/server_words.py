"""What the real servers say when a request fails: test data for issue 16.

Recorded on this machine (December 2026) from Debian's LXD 5.0.2 and Incus
6.0.4 as scripts/lxd-sandbox prepares them, with apitx and ``validate=False``:
each text is the envelope's ``error`` or, for an operation that failed, its
``err``, exactly as the server sent it. ``<new>`` is an instance or profile the
recording made for the purpose (and deleted); ``untrusted`` requests went over
HTTPS with a client certificate the server does not trust.

None of these texts carries a credential, so redaction must leave every one
of them as it is (tests/test_redact.py). Some name a secret-looking key
(``bogus.password``, ``security.secret``, ``token.x``, ``core.trust_password``)
or use "key" as a word (``Unknown configuration key: bogus.key``): that is
exactly what a rule about words instead of credentials got wrong.

Server-wide changes (``PATCH /1.0``) were recorded once and are never
replayed: on Incus 6.0.4 a PATCH /1.0 that fails on a cluster-wide key reverts
the member's own config with what the request held, erasing
``core.https_address`` from its database (Incus's ``doApi10Update``).
"""

#: Request → what both servers said, or (LXD 5.0.2's words, Incus 6.0.4's).
RECORDED = {
    'PATCH /1.0/profiles/<new> {"config": {"user.x": "1", "bogus.key": "v"}}':
        'Unknown configuration key: bogus.key',
    'PATCH /1.0/profiles/<new> {"config": {"user.x": 1}}':
        'json: cannot unmarshal number into Go struct field ProfilePut.config of type string',
    'PATCH /1.0/profiles/<new> {"config": {"limits.memory": "lots"}}':
        'Invalid value: lots',
    'PATCH /1.0/profiles/<new> {"config": {"security.privileged": "maybe"}}':
        'Invalid value for a boolean "maybe"',
    'PATCH /1.0/profiles/<new> {"config": {"boot.autostart.delay": "soon"}}':
        'Invalid value for an integer "soon"',
    'PATCH /1.0/profiles/<new> {"config": {"limits.cpu": "-3"}}':
        'Invalid CPU limit syntax',
    'PATCH /1.0/profiles/<new> {"config": {"security.nesting": "yes please"}}':
        'Invalid value for a boolean "yes please"',
    'PATCH /1.0/profiles/<new> {"devices": {"eth0": {"type": "nic", "nictype": "bogus"}}}':
        'Device validation failed for "eth0": Failed loading device "eth0": Unsupported device type',
    'PATCH /1.0/profiles/<new> {"devices": {"d": {"type": "bogus"}}}':
        'Device validation failed for "d": Failed loading device "d": Unsupported device type',
    'PATCH /1.0/profiles/<new> {"devices": {"d": {"type": "disk", "path": "/mnt"}}}':
        'Device validation failed for "d": Disk entry is missing the required "source" or "path" property',
    'PATCH /1.0/profiles/<new> {"devices": {"d": {"type": "disk", "path": "/mnt", "source": "/nonexistent-apitx", "bogus": "x"}}}':
        'Device validation failed for "d": Invalid device option "bogus"',
    'PATCH /1.0/profiles/<new> {"config": {"environment.PASSWORD": 1}}':
        'json: cannot unmarshal number into Go struct field ProfilePut.config of type string',
    'PATCH /1.0/instances/<new> {"config": {"user.x": "1", "bogus.key": "v"}}':
        'Invalid config: Unknown configuration key: bogus.key',
    'PATCH /1.0/instances/<new> {"config": {"user.x": 1}}':
        'json: cannot unmarshal number into Go struct field InstancePut.config of type string',
    'PATCH /1.0/instances/<new> {"config": {"limits.memory": "lots"}}':
        'Invalid config: Invalid value: lots',
    'PATCH /1.0/instances/<new> {"config": {"security.privileged": "maybe"}}':
        'Invalid config: Invalid value for a boolean "maybe"',
    'PATCH /1.0/instances/<new> {"config": {"boot.autostart.delay": "soon"}}':
        'Invalid config: Invalid value for an integer "soon"',
    'PATCH /1.0/instances/<new> {"config": {"limits.cpu": "-3"}}':
        'Invalid config: Invalid CPU limit syntax',
    'PATCH /1.0/instances/<new> {"config": {"security.nesting": "yes please"}}':
        'Invalid config: Invalid value for a boolean "yes please"',
    'PATCH /1.0/instances/<new> {"devices": {"eth0": {"type": "nic", "nictype": "bogus"}}}':
        'Invalid devices: Device validation failed for "eth0": Failed loading device "eth0": Unsupported device type',
    'PATCH /1.0/instances/<new> {"devices": {"d": {"type": "bogus"}}}':
        'Invalid devices: Device validation failed for "d": Failed loading device "d": Unsupported device type',
    'PATCH /1.0/instances/<new> {"devices": {"d": {"type": "disk", "path": "/mnt"}}}':
        'Invalid devices: Device validation failed for "d": Disk entry is missing the required "source" or "path" property',
    'PATCH /1.0/instances/<new> {"devices": {"d": {"type": "disk", "path": "/mnt", "source": "/nonexistent-apitx", "bogus": "x"}}}':
        'Invalid devices: Device validation failed for "d": Invalid device option "bogus"',
    'PATCH /1.0/instances/<new> {"config": {"environment.PASSWORD": 1}}':
        'json: cannot unmarshal number into Go struct field InstancePut.config of type string',
    'PUT /1.0/instances/<new>/state {"action": "frobnicate"}':
        "Unknown action: 'frobnicate'",
    'PUT /1.0/instances/<new>/state {"action": "stop"}':
        'The instance is already stopped',
    'POST /1.0/instances/<new>/exec {"command": ["true"], "wait-for-websocket": false}':
        'Instance is not running',
    'POST /1.0/instances/<new> {"name": "Bad Name!"}':
        'Invalid instance name: Name can only contain alphanumeric and hyphen characters',
    'POST /1.0/instances {"name": "Bad Name!", "source": {"type": "none"}}':
        'Invalid instance name: Name can only contain alphanumeric and hyphen characters',
    'POST /1.0/instances {"name": "<new>", "source": {"type": "none"}}': (
        'Failed creating instance record: Add instance info to the database: This "instances" entry already exists',
        'Failed creating instance record: Add instance info to the database: Failed to create "instances" entry: UNIQUE constraint failed: instances.project_id, instances.name'),
    'POST /1.0/instances {"name": "<new>", "source": {"type": "image", "alias": "no-such-alias-': (
        'Image alias not found',
        'Image not provided for instance creation'),
    'POST /1.0/instances {"name": "<new>", "source": {"type": "image", "fingerprint": "01234567':
        'Image not provided for instance creation',
    'POST /1.0/instances {"name": "<new>", "source": {"type": "bogus"}}':
        'Unknown source type bogus',
    'POST /1.0/instances {"name": "<new>", "source": {"type": "none"}, "profiles": ["no-such-profile-apitx"]}':
        'Requested profile "no-such-profile-apitx" doesn\'t exist',
    'POST /1.0/instances {"name": "<new>", "type": "bogus", "source": {"type": "none"}}':
        'Invalid instance type',
    'POST /1.0/profiles {"name": "<new>"}': (
        'Error inserting "apitx-e9bf85e6" into database: The profile already exists',
        'Error inserting "apitx-d9f604e6" into database: The profile already exists'),
    'POST /1.0/profiles {"name": "bad/name"}':
        'Profile names may not contain slashes',
    'GET /1.0/instances/no-such-apitx': (
        'Instance not found',
        'Failed to fetch instance "no-such-apitx" in project "default": Instance not found'),
    'GET /1.0/images/0123456789abcdef': (
        'Image not found',
        'Image "0123456789abcdef" not found'),
    'GET /1.0/images/aliases/no-such-alias-apitx':
        'Image alias not found',
    'GET /1.0/profiles/no-such-apitx':
        'Fetch profile: Profile not found',
    'GET /1.0/networks/no-such-apitx':
        'Network not found',
    'GET /1.0/storage-pools/no-such-apitx':
        'Storage pool not found',
    'GET /1.0/storage-pools/default/volumes/custom/no-such-apitx':
        'Storage pool volume not found',
    'GET /1.0/projects/no-such-apitx':
        'Project not found',
    'GET /1.0/certificates/0123456789abcdef':
        'Certificate not found',
    'GET /1.0/operations/<exec>':
        'Operation not found',
    'GET /1.0/instances/no-such-apitx/snapshots/s': (
        'Instance not found',
        'Failed to fetch instance "no-such-apitx/s" in project "default": Instance not found'),
    'GET /1.0/instances/<new>/snapshots/no-such': (
        'Failed to fetch snapshot "no-such" of instance "apitx-e9bf85e6" in project "default": InstanceSnapshot not found',
        'Failed to fetch snapshot "no-such" of instance "apitx-d9f604e6" in project "default": Instance_snapshot not found'),
    'GET /1.0/instances/<new>/files?path=/no/such/file':
        'Not Found',
    'GET /1.0/instances/<new>/logs/no-such.log': (
        'log file name no-such.log not valid',
        'Log file name "no-such.log" not valid'),
    'GET /1.0/instances/<new>/backups/no-such': (
        'Load backup from database: Instance backup not found',
        'Instance backup not found'),
    'GET /1.0/storage-pools/default/buckets/no-such-apitx': (
        'not found',
        'Storage bucket not found'),
    'GET /1.0/storage-pools/default/buckets/no-such-apitx/keys/k': (
        'not found',
        'Storage bucket not found'),
    'POST /1.0/storage-pools/default/buckets/no-such-apitx/keys {"name": "k", "role": "admin"}': (
        'not found',
        'Failed creating storage bucket key: Storage bucket not found'),
    'POST /1.0/storage-pools/default/buckets {"name": "b-apitx"}': (
        'not found',
        "Failed creating storage bucket: Failed connecting to bucket: Couldn't find the MinIO client tool"),
    'POST /1.0/storage-pools {"name": "p", "driver": "bogus"}':
        'Unknown driver',
    'POST /1.0/networks {"name": "n", "type": "bogus"}':
        'Unknown driver',
    'POST /1.0/certificates {"type": "client", "trust_token": "bogus"}':
        'Client is already trusted',
    'POST /1.0/certificates {"type": "client", "password": "bogus"}':
        'Client is already trusted',
    'POST /1.0/certificates {"type": "client", "certificate": "not-a-cert"}':
        'illegal base64 data at input byte 3',
    'POST /1.0/certificates {"type": "bogus"}':
        'Client is already trusted',
    'DELETE /1.0/certificates/0123456789abcdef':
        'Certificate not found',
    'POST /1.0/cluster/members {"server_name": "m2"}':
        'This server is not clustered',
    'GET /1.0/cluster/members/m9':
        'Server is not clustered',
    'PATCH /1.0 {"config": {"bogus.key": "v"}}':
        "cannot set 'bogus.key' to 'v': unknown key",
    'PATCH /1.0 {"config": {"core.https_address": "not an address"}}':
        'cannot set \'core.https_address\' to \'not an address\': Couldn\'t resolve "not an address"',
    'PATCH /1.0 {"config": {"core.trust_password": 5}}': (
        "cannot set 'core.trust_password': invalid type float64",
        'json: cannot unmarshal number into Go struct field ServerPut.config of type string'),
    'PATCH /1.0 {"config": {"images.auto_update_interval": "often"}}':
        "cannot set 'images.auto_update_interval' to 'often': invalid integer",
    'PATCH /1.0/projects/default {"config": {"bogus.key": "v"}}':
        "You can't change the features of the default project",
    'PATCH /1.0/networks/no-such-apitx {"config": {"bogus.key": "v"}}':
        'Failed loading network: Network not found',
    'PATCH /1.0/storage-pools/default {"config": {"bogus.key": "v"}}':
        'Invalid option "bogus.key"',
    'POST /1.0/images {"source": {"type": "url", "url": "https://127.0.0.1:9/x"}}':
        'Head "https://127.0.0.1:9/x": Unable to connect to: 127.0.0.1:9 ([dial tcp 127.0.0.1:9: connect: connection refused])',
    'POST /1.0/images/aliases {"name": "x-apitx", "target": "0123456789abcdef"}':
        'Image not found',
    'DELETE /1.0/instances/no-such-apitx':
        'Instance not found',
    'GET /1.0/bogus-endpoint':
        'not found',
    'GET /1.0/op websocket':
        'Operation not found',
    'untrusted GET /1.0/instances':
        'not authorized',
    'untrusted POST /1.0/certificates {"type": "client", "password": "wrong-apitx"}':
        'not authorized',
    'untrusted POST /1.0/certificates {"type": "client", "trust_token": "bogus"}':
        'not authorized',
    'untrusted POST /1.0/certificates {"type": "client", "trust_token": "<well-formed, unknown>"}': (
        'not authorized',
        'No matching certificate add operation found'),
    'untrusted POST /1.0/certificates {"type": "client"}':
        'not authorized',
    'POST /1.0/instances/<new>/files?path=/no/such/dir/file':
        'Not Found',
    'DELETE /1.0/instances/<new>/files?path=/no/such/file':
        'Not Found',
    'POST /1.0/instances/<new>/snapshots {"name": "bad/name"}':
        'Invalid snapshot name: Cannot contain "/"',
    'POST /1.0/instances/<new> {"name": "<new>"}': (
        'Name "apitx-e5649594" already in use',
        'Invalid instance name: Name must be 1-63 characters long'),
    'DELETE /1.0/instances/<new>':
        'Instance is running',
    'POST /1.0/instances/<new>/exec {"command": ["/no/such/cmd"], "wait-for-websocket": false, "record-output": false}':
        'Command not found',
    'POST /1.0/instances/<new>/exec {"command": [], "wait-for-websocket": false}':
        'Failed to retrieve PID of executing child process',
    'POST /1.0/instances/<new>/exec {"command": ["true"], "environment": {"PASSWORD": 5}}':
        'json: cannot unmarshal number into Go struct field InstanceExecPost.environment of type string',
    'PATCH /1.0/instances/<new> {"config": {"environment.DB_PASS": "x", "bogus.password": "v"}}':
        'Invalid config: Unknown configuration key: bogus.password',
    'PATCH /1.0/instances/<new> {"config": {"user.ok": "v", "security.secret": "v"}}':
        'Invalid config: Unknown configuration key: security.secret',
    'PATCH /1.0/instances/<new> {"config": {"token.x": "v"}}':
        'Invalid config: Unknown configuration key: token.x',
    'PUT /1.0/instances/<new>/state {"action": "start"}':
        'The instance is already running',
    'GET /1.0/operations/<exec>/websocket?secret=<64 zeros>': (
        'permission denied',
        'Forbidden'),
    'GET /1.0/operations/<exec>/websocket (no secret)':
        'missing secret',
    'untrusted GET /1.0/operations/<exec>/websocket?secret=<64 zeros>': (
        'permission denied',
        'Requestor mismatch'),
    'GET /1.0/operations/<exec>/wait?timeout=soon':
        'strconv.Atoi: parsing "soon": invalid syntax',
    'DELETE /1.0/operations/<exec>':
        "This operation can't be cancelled",
    'POST /1.0/images/aliases {"name": "apitx-busybox", "target": "<64 zeros>"}':
        'Alias "apitx-busybox" already exists',
    'PUT /1.0/images/0123456789abcdef {"public": false}':
        'Image not found',
    'GET /1.0/instances?filter=name eq':
        'Invalid filter: clause has no value',
    'POST /1.0/instances {not json':
        "invalid character 'n' looking for beginning of object key string",
    'POST /1.0/profiles {"name": ""}':
        'No name provided',
    'GET /1.0/storage-pools/default/volumes/bogus/x':
        'Invalid storage volume type name',
    'POST /1.0/storage-pools/default/volumes/custom {"name": "v", "config": {"bogus.key": "1"}}': (
        'Invalid option for volume "default_v" option "bogus.key"',
        'Invalid option for volume "v" option "bogus.key"'),
    'GET /1.0/warnings/00000000-0000-0000-0000-000000000000':
        'Warning not found',
    'GET /1.0/network-acls/no-such-apitx':
        'Network ACL not found',
    'GET /1.0/networks/no-such-apitx/leases':
        'Failed loading network: Network not found',
}

#: Server name → request → its words.
SERVER_WORDS = {
    server: {request: said if isinstance(said, str) else said[index]
             for request, said in RECORDED.items()}
    for index, server in enumerate(("lxd", "incus"))
}
