pip install wcwidth
