apt-get install --reinstall -y less
