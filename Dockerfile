# The mikkoo-relay application image: the admin web server and the Celery worker.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --no-input -v 0
EXPOSE 8000
CMD ["gunicorn", "mikkoo_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
