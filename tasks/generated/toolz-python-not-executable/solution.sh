chmod 755 /usr/bin/python3.11
