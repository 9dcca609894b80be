router = __import__("fastapi").APIRouter()
